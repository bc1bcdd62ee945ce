"""ipywidgets front-ends. Each panel's callbacks call tested ``wormlab`` functions; nothing in
``wormlab`` imports this package."""
