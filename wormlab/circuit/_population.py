"""Populations of parameter sets: batched in-process, or spread over Dask workers.

A population larger than one batch is cut into chunks of ``batch_size`` parameter sets; each
chunk is one batched :func:`simulate` call (no gradients). With ``scheduler=None`` the chunks run
in this process; ``scheduler="local"`` starts a ``distributed.LocalCluster`` (default 2 workers,
1 thread each); any other string is the address of a running ``distributed`` scheduler.
The chunking is the same either way, so results are bit-identical on CPU.
"""

from __future__ import annotations

import numpy as np
import torch

from wormlab.circuit._network import Network


def _chunk_task(net: Network, chunk: dict, stimulus, duration_ms: float, config: dict,
                reduce):
    from wormlab.circuit._simulate import simulate
    from wormlab.runs import configure_torch

    configure_torch()
    size = next(iter(chunk.values())).shape[0] if chunk else 1
    bnet = net.batched(size)
    with torch.no_grad():
        for k, v in chunk.items():
            bnet.params[k].copy_(torch.as_tensor(v, dtype=bnet.dtype))
        res = simulate(bnet, stimulus, duration_ms, config=config)
    if reduce is not None:
        return np.asarray(reduce(res))
    return {k: v.numpy() for k, v in res.states.items()}


def simulate_population(network: Network, population: dict, stimulus=None,
                        duration_ms: float = 100.0, *, config=None, batch_size: int = 64,
                        scheduler: str | None = None, n_workers: int = 2, reduce=None,
                        show_progress: bool = False):
    """Simulate a population of parameter sets.

    Args:
        network: an unbatched :class:`Network` (the template; parameters not in
            ``population`` keep its values).
        population: ``{parameter name: tensor (P, *shape)}`` with one row per member; shapes
            after the first dimension must match ``network.params[name]``.
        stimulus, duration_ms, config: as for :func:`simulate` (config as SimConfig or dict).
        batch_size: members per batched simulation.
        scheduler: None (in-process), ``"local"`` (a LocalCluster of ``n_workers`` one-thread
            workers, closed afterwards) or a ``distributed`` scheduler address.
        reduce: optional picklable ``f(Result) -> array (b, ...)`` run on the worker (e.g. a
            loss per member), so only small results travel.

    Returns:
        ``reduce`` given: an array (P, ...). Otherwise ``{state: array (T, P, K)}`` as
        :attr:`Result.states`.
    """
    import dataclasses

    from wormlab.circuit._simulate import SimConfig

    if network.batch_size is not None:
        raise ValueError("simulate_population takes an unbatched network as the template")
    if not population:
        raise ValueError("population is empty: give {parameter: tensor (P, ...)}")
    sizes = set()
    for k, v in population.items():
        if k not in network.params:
            raise KeyError(f"unknown parameter {k!r}; known: {sorted(network.params)}")
        v = torch.as_tensor(v)
        if tuple(v.shape[1:]) != tuple(network.params[k].shape):
            raise ValueError(f"population[{k!r}] has shape {tuple(v.shape)}; expected "
                             f"(P, {', '.join(map(str, network.params[k].shape))})")
        if not bool(torch.isfinite(v).all()):
            raise ValueError(f"population[{k!r}] holds NaN or Inf")
        sizes.add(v.shape[0])
    if len(sizes) != 1:
        raise ValueError(f"population members disagree in number: {sorted(sizes)}")
    n = sizes.pop()
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    cfg = config if isinstance(config, dict) else dataclasses.asdict(config or SimConfig())
    pop = {k: torch.as_tensor(v).detach().cpu().numpy() for k, v in population.items()}
    chunks = [{k: v[i:i + batch_size] for k, v in pop.items()} for i in range(0, n, batch_size)]
    template = network.cpu()
    from wormlab.runs import progress

    if scheduler is None:
        outs = [_chunk_task(template, c, stimulus, duration_ms, cfg, reduce)
                for c in progress(chunks, desc="population", disable=not show_progress)]
    else:
        from dask.distributed import Client, LocalCluster, as_completed

        cluster = None
        if scheduler == "local":
            cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1,
                                   processes=True, dashboard_address=None)
            client = Client(cluster)
        else:
            client = Client(scheduler)
        try:
            net_f = client.scatter(template, broadcast=True)
            futs = [client.submit(_chunk_task, net_f, c, stimulus, duration_ms, cfg, reduce,
                                  pure=False) for c in chunks]
            bar = progress(total=len(futs), desc="population (dask)",
                           disable=not show_progress)
            for _ in as_completed(futs):
                bar.update(1)
            bar.close()
            outs = client.gather(futs)
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    if reduce is not None:
        return np.concatenate(outs, 0)
    return {k: np.concatenate([o[k] for o in outs], 1) for k in outs[0]}
