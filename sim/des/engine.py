"""The SimPy model of one layer: DMA engines, DRAM channels, buffer slots, arrays.

Resources (all owned by one ``simpy.Environment`` per layer):

* ``dma``: a Store of DMA-engine ids (``memory[0].dma_engines``, default 2); a transfer
  holds one engine while it waits out the access latency and while its channel serves
  it, not while it queues for the channel (an engine holding a queued transfer would let
  two long transfers waiting at one channel keep a small one needed sooner from it:
  weights dealt over the sub-steps of an inner level, +17 % on an edge_tpu_like
  depthwise layer; the engines' ids stay for the trace and busy fractions).
* ``channels``: one Resource per DRAM channel (``memory[0].channels``, default 1), each
  ``bandwidth / channels`` bytes per cycle. Transfers are interleaved over the channels
  round-robin in the order they reach them (tile-granular address interleaving). A
  transfer holding an engine first waits the access latency (``memory[0].latency``,
  not occupying a channel), then holds its channel for ``bytes / channel B/cycle``
  cycles, rounded up; back-to-back transfers on a channel carry the unused fraction of
  the last cycle forward, so a burst costs ceil(its bytes / bandwidth). A channel
  serves the transfer needed earliest first and a transfer needed earlier preempts the
  one in service at a cycle boundary (the rest of its bytes wait their turn): a load is
  needed by its step, a write-back by the step that opens the output tile reusing its
  output slot (the end of the layer when none does). This is a DMA schedule issuing
  bursts in order of need, as a compiler's static schedule does; serving whole
  transfers first come first served instead would let a large prefetch (the next k
  block's weights) or a write-back with slack hold the channel while the very next
  step's small input tile waits, an idle array the hardware would not have (issue 14:
  up to +34 % on edge_tpu_like's 1x1 downsample layers, +19 % on tpu_v1 vgg16
  features.7).
* buffer slots: a Container per operand (input, weight, output) with 2 slots when every
  level holding it is double-buffered, else 1. A tile's load takes a slot; the slot is
  freed after the tile's last use (inputs, weights) or when its write-back has left the
  chip (outputs). The mapper's capacity check (two tiles per double-buffered level)
  is what makes the slots fit; :func:`sim.des.check_fits` re-checks a given mapping.

Processes: an input and a weight prefetcher each walk the steps in order, taking a
slot and starting each of their tiles' loads as soon as a slot is free (separate
queues, so a large weight tile is fetched while inputs stream); an output allocator takes an
output slot for each new output tile (and reads back its partial sums, if revisited);
``count`` array processes compute. Every step's compute time is that of the most
loaded array (array 0: the layer's folds are dealt round-robin, array 0 gets
ceil(folds / count), array a a share ``folds_a / folds_0`` of each step), so array 0
sets the pace and the others never delay it. After a step the arrays free the slots
whose tile is used up and hand a finished output tile to write-back, which competes
with prefetch for DMA engines and channels.

Cross-layer prefetch: a program's ``tail_read`` bytes (the next layer's first weight
tile) are read as its step ``tail_at`` starts, needed by no step of its own (served
after every transfer the layer needs); the layer ends when they have landed.

Stall attribution (array 0's idle time; the causes sum to the layer's stall cycles):
before each step the array waits in turn for its input tile, its weight tile and its
output slot; a wait for a transfer counts as DRAM contention for as long as that
transfer queued behind transfers of *other* streams (its channel's time granted to
other operands or to write-back while it queued), the rest as ``input`` / ``weight`` /
``psum`` (a stream queuing behind its own earlier tiles is bound by its own traffic);
a wait for an output slot is ``writeback``, as is the time after the last compute until
the last write-back completes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from heapq import heappush

import simpy
from simpy.events import NORMAL

from .program import Program

CAUSES = ("input", "weight", "psum", "writeback", "contention")
STREAMS = ("input", "weight", "psum", "store")
PSUM, STORE = 2, 3


class _Env(simpy.Environment):
    """A SimPy Environment that counts the events it schedules."""

    def __init__(self):
        super().__init__()
        self.n_events = 0

    def schedule(self, event, priority=NORMAL, delay=0):
        self.n_events += 1
        heappush(self._queue, (self._now + delay, priority, next(self._eid), event))


@dataclass
class Outcome:
    """What one layer's run measured (cycles are counts, from the layer's start)."""
    end: int
    array_busy: list
    channel_busy: list
    dma_busy: list
    stalls: dict
    read_bytes: float
    write_bytes: float
    events: int
    spans: list = field(default_factory=list)  # (track, name, start, dur) when traced


@dataclass(frozen=True)
class Hardware:
    """The engine's view of the architecture."""
    bytes_per_cycle: float      # total DRAM bandwidth (inf: unlimited)
    channels: int
    dma_engines: int
    latency: int
    arrays: int

    def transfer_cycles(self, nbytes, credit: float = 0.0) -> tuple[int, float]:
        """Whole cycles a channel needs for ``nbytes`` and the fraction of the last cycle
        left over. ``credit`` is the unused fraction of the previous transfer's last
        cycle when this one follows it back to back, so a burst of transfers takes
        ceil(burst bytes / bandwidth) cycles, not the sum of per-transfer ceilings."""
        bpc = self.bytes_per_cycle / self.channels
        if not nbytes or math.isinf(bpc):
            return 0, credit
        exact = nbytes / bpc - credit
        dur = max(0, math.ceil(exact - 1e-9))
        return dur, dur - exact


def run(prog: Program, hw: Hardware, shares: tuple, trace: bool = False) -> Outcome:
    """Simulate one program; ``shares[a]`` is array a's work relative to array 0 as a
    (numerator, denominator) pair (array 0: equal)."""
    env = _Env()
    n = prog.steps
    dma = simpy.Store(env, capacity=hw.dma_engines)
    dma.items.extend(range(hw.dma_engines))
    chans = [simpy.PreemptiveResource(env, capacity=1) for _ in range(hw.channels)]
    ch_busy = [0] * hw.channels
    ch_free = [0] * hw.channels     # when each channel's last transfer ended
    ch_credit = [0.0] * hw.channels  # unused fraction of that transfer's last cycle
    dma_busy = [0] * hw.dma_engines
    slots = {op: simpy.Container(env, capacity=w, init=w) for op, w in prog.ways.items()}
    rr = [0]
    served = [[0] * 4 for _ in range(hw.channels)]  # per channel, per stream (STREAMS)
    spans = [] if trace else None
    moved = [0, 0]  # read, write bytes

    def transfer(nbytes, done, name, stream, need):
        """Move ``nbytes``; ``need`` is the step that waits for it (the channel's
        priority: the earliest need is served first, preempting a later one)."""
        t_req = env.now
        seen = [sum(cs) - cs[stream] for cs in served]  # others' channel time so far
        if hw.latency:   # the access latency, on an engine (several engines overlap it)
            eng = yield dma.get()
            t_eng = env.now
            yield env.timeout(hw.latency)
            dma.put(eng)
            dma_busy[eng] += hw.latency
            if spans is not None:
                spans.append((f"dma {eng}", f"{name} latency", t_eng, hw.latency))
        c = rr[0]
        rr[0] = (c + 1) % hw.channels
        left_b, own = float(nbytes), 0
        while True:
            with chans[c].request(priority=need) as req:
                try:
                    yield req
                except simpy.Interrupt:   # granted, then preempted in the same cycle
                    continue              # before it moved a byte: queue again
                get = dma.get()           # an engine moves the bytes the channel serves
                try:
                    eng = yield get
                except simpy.Interrupt:   # preempted while waiting for an engine
                    if get.triggered:
                        dma.put(get.value)
                    else:
                        get.cancel()
                    continue
                t_ch = env.now
                credit = ch_credit[c] if ch_free[c] == t_ch else 0.0
                dur, left = hw.transfer_cycles(left_b, credit)
                ch_credit[c], ch_free[c] = left, t_ch + dur
                try:
                    if dur:
                        yield env.timeout(dur)
                    done_piece = dur
                except simpy.Interrupt:   # a transfer needed earlier took the channel
                    done_piece = env.now - t_ch
                    left_b -= (done_piece + credit) * hw.bytes_per_cycle / hw.channels
                    ch_credit[c], ch_free[c] = 0.0, env.now
                    dur = None
                dma.put(eng)
                dma_busy[eng] += done_piece
                served[c][stream] += done_piece
                ch_busy[c] += done_piece
                own += done_piece
                if spans is not None and done_piece:
                    spans.append((f"dram ch{c}", name, t_ch, done_piece))
                    spans.append((f"dma {eng}", name, t_ch, done_piece))
            if dur is not None:
                break
        moved[stream == STORE] += nbytes
        queued = env.now - t_req - hw.latency - own
        others = sum(served[c]) - served[c][stream] - seen[c]
        done.succeed(min(queued, others))

    ev_in, ev_w, ev_out, t_slot = [None] * n, [None] * n, [None] * n, [0] * n
    # a write-back is needed by the step that reuses its output slot: the one opening
    # the output tile ``ways`` tiles after the one it stores (none: the end, step n)
    opens = [j for j in range(n) if prog.new_out[j]]
    ways_out = prog.ways["output"]
    store_need, i = [n] * n, 0
    for j in range(n):
        if prog.store_bytes[j]:
            while i + 1 < len(opens) and opens[i + 1] <= j:
                i += 1
            store_need[j] = opens[i + ways_out] if i + ways_out < len(opens) else n

    for j in range(n):
        if j == 0 or prog.free_in[j - 1]:
            ev_in[j] = env.event()
        if j == 0 or prog.free_w[j - 1]:
            ev_w[j] = env.event()

    def prefetcher(evs, op, nb):
        slot = slots[op]
        for j in range(n):
            if evs[j] is not None:
                yield slot.get(1)
                if nb[j]:
                    env.process(transfer(nb[j], evs[j], f"load {op} #{j}", STREAMS.index(op), j))
                else:
                    evs[j].succeed(0)

    def allocator():
        for j in range(n):
            if prog.new_out[j]:
                ev_out[j] = env.event()
        for j in range(n):
            if prog.new_out[j]:
                yield slots["output"].get(1)
                t_slot[j] = env.now
                if prog.psum_bytes[j]:
                    env.process(transfer(prog.psum_bytes[j], ev_out[j], f"load psum #{j}",
                                         PSUM, j))
                else:
                    ev_out[j].succeed(0)

    stalls = dict.fromkeys(CAUSES, 0)
    go = [simpy.Store(env) for _ in range(len(shares) - 1)]  # step queue of each helper
    busy = [0] * len(shares)

    def store_done(ev):
        slots["output"].put(1)

    def lead():
        cur_in = cur_w = None
        for j in range(n):
            if ev_in[j] is not None:
                cur_in = ev_in[j]
            if ev_w[j] is not None:
                cur_w = ev_w[j]
            for ev, cause in ((cur_in, "input"), (cur_w, "weight")):
                if not ev.processed:
                    t0 = env.now
                    q = yield ev
                    s = env.now - t0
                    cont = min(s, q)
                    stalls["contention"] += cont
                    stalls[cause] += s - cont
            if ev_out[j] is not None:
                t0 = env.now
                q = yield ev_out[j]
                s = env.now - t0
                wb = max(0, min(env.now, t_slot[j]) - t0)
                cont = min(s - wb, q)
                stalls["writeback"] += wb
                stalls["contention"] += cont
                stalls["psum"] += s - wb - cont
            if prog.tail_read and j == prog.tail_at:   # the next layer's first weights
                env.process(transfer(prog.tail_read, env.event(), "prefetch next layer's "
                                     "weights", STREAMS.index("weight"), n))
            c = prog.compute[j]
            for g in go:
                g.put(j)
            if spans is not None and c:
                spans.append(("array 0", f"step #{j}", env.now, c))
            if c:
                yield env.timeout(c)
            busy[0] += c
            if prog.free_in[j]:
                slots["input"].put(1)
            if prog.free_w[j]:
                slots["weight"].put(1)
            closes = j == n - 1 or prog.new_out[j + 1]   # frees its output slot
            if prog.store_bytes[j]:
                ev = env.event()
                if closes:
                    ev.callbacks.append(store_done)
                env.process(transfer(prog.store_bytes[j], ev, f"store #{j}", STORE,
                                     store_need[j]))
            elif closes:
                slots["output"].put(1)
        end_compute[0] = env.now

    def helper(a, num, den):
        for _ in range(n):
            j = yield go[a - 1].get()
            d = prog.compute[j] * num // den
            if d:
                if spans is not None:
                    spans.append((f"array {a}", f"step #{j}", env.now, d))
                yield env.timeout(d)
            busy[a] += d

    end_compute = [0]
    env.process(prefetcher(ev_in, "input", prog.in_bytes))
    env.process(prefetcher(ev_w, "weight", prog.w_bytes))
    env.process(allocator())
    led = env.process(lead())
    for a in range(1, len(shares)):
        env.process(helper(a, *shares[a]))
    env.run()
    if not led.processed:   # every event ran out before the last step: a program bug
        raise RuntimeError(f"discrete-event program deadlocked at cycle {env.now} of "
                           f"{n} steps (an output slot never freed?)")
    end = env.now
    stalls["writeback"] += end - end_compute[0]
    return Outcome(end=end, array_busy=busy, channel_busy=ch_busy, dma_busy=dma_busy,
                   stalls=stalls, read_bytes=moved[0], write_bytes=moved[1],
                   events=env.n_events, spans=spans or [])
