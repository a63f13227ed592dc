// The recheck times of one Registry's namespaces, soonest first, so that a reconcile finds the
// namespaces that are due, and the next recheck, in O(log n) per namespace rather than by a scan
// of every namespace. A binary min-heap with lazy deletion: an entry is dropped when it reaches
// the top and the caller says it is no longer current (the namespace's recheck moved or went).

export interface Recheck {
  at: number;
  namespace: string;
}

export class RecheckQueue {
  private heap: Recheck[] = [];

  /** Entries held, current or not. */
  get size(): number {
    return this.heap.length;
  }

  push(at: number, namespace: string): void {
    const heap = this.heap;
    heap.push({ at, namespace });
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (heap[parent]!.at <= heap[i]!.at) break;
      [heap[parent], heap[i]] = [heap[i]!, heap[parent]!];
      i = parent;
    }
  }

  /** The soonest current entry; the stale entries above it are dropped. */
  peek(isCurrent: (r: Recheck) => boolean): Recheck | undefined {
    while (this.heap.length && !isCurrent(this.heap[0]!)) this.pop();
    return this.heap[0];
  }

  /** Takes the soonest entry off. */
  pop(): Recheck | undefined {
    const heap = this.heap;
    const top = heap[0];
    const last = heap.pop();
    if (!heap.length || !last) return top;
    heap[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let min = i;
      if (l < heap.length && heap[l]!.at < heap[min]!.at) min = l;
      if (r < heap.length && heap[r]!.at < heap[min]!.at) min = r;
      if (min === i) break;
      [heap[min], heap[i]] = [heap[i]!, heap[min]!];
      i = min;
    }
    return top;
  }

  /** Replaces every entry with `entries` (to shed stale entries). */
  rebuild(entries: Iterable<Recheck>): void {
    this.heap = [];
    for (const e of entries) this.push(e.at, e.namespace);
  }
}
