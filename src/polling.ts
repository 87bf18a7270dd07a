import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import { PachlsApiError } from './api/request';

/** Longest pause between polls while the server does not answer (backoff). */
const MAX_BACKOFF = 60000;

export type Settled<T> = { ok: true; value: T } | { ok: false; reason: unknown };

/** A promise that always resolves, telling how the given one settled. */
export function settle<T>(promise: Promise<T>): Promise<Settled<T>> {
  return promise.then(
    value => ({ ok: true as const, value }),
    reason => ({ ok: false as const, reason })
  );
}

/**
 * A state replaced (never mutated) on every change, reloaded by `refresh()`
 * and by a `Poll` while something that shows it is visible.
 *
 * The poll stands by while the browser tab is hidden and backs off while the
 * server does not answer, waiting at least what it asked (`Retry-After`) when
 * it said; overlapping refreshes are coalesced into at most one more.
 */
export abstract class PollingModel<S extends object> {
  constructor(initial: S, options: { name: string; interval: number }) {
    this._state = initial;
    this._interval = options.interval;
    this._poll = new Poll({
      auto: false,
      factory: () => this.pollOnce(),
      linger: 0,
      name: options.name,
      standby: 'when-hidden'
    });
  }

  get state(): S {
    return this._state;
  }

  /** Emitted whenever `state` changes. */
  get changed(): ISignal<this, S> {
    return this._changed;
  }

  /** Polling interval in ms; 0 turns polling off. */
  get interval(): number {
    return this._interval;
  }
  set interval(value: number) {
    this._interval = Math.max(0, value);
    this.schedule();
  }

  /** Whether something showing the state is visible (polling runs only then). */
  get visible(): boolean {
    return this._visible;
  }
  set visible(value: boolean) {
    if (value === this._visible) {
      return;
    }
    this._visible = value;
    if (value && this.refreshOnShow()) {
      void this.refresh();
    }
    this.schedule();
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    this._poll.dispose();
    Signal.clearData(this);
  }

  /** Reload the state; a call while one runs asks for one more after it. */
  refresh(): Promise<void> {
    if (this._refreshing) {
      this._again = true;
      return this._refreshing;
    }
    this._refreshing = this.load().finally(() => {
      this._refreshing = null;
      this.schedule();
      if (this._again && !this._disposed) {
        this._again = false;
        void this.refresh();
      }
    });
    return this._refreshing;
  }

  /** Load everything the state holds (errors go into the state). */
  protected abstract load(): Promise<void>;

  /** Why the last load failed as a whole (the server does not answer), else null. */
  protected abstract failure(): string | null;

  /** Whether becoming visible reloads at once. */
  protected refreshOnShow(): boolean {
    return true;
  }

  /** How long until the next poll (ms); 0 while nothing should poll. */
  protected pollDelay(): number {
    return this._visible ? this._interval : 0;
  }

  /**
   * Keep the `Retry-After` of the error a load failed with as a whole (a busy
   * server's or a proxy's 503 or 429 says when to come back); subclasses call
   * it where `failure()` starts to say why.
   */
  protected rememberRetryAfter(reason: unknown): void {
    this._retryAfter = reason instanceof PachlsApiError ? reason.retryAfter : null;
  }

  /**
   * One poll: a refresh, failing (so the poll backs off) when the server does
   * not answer. When it said how long to wait, the next poll waits that long
   * (at least the interval, at most the longest backoff) instead of the
   * backoff's guess, which starts at the interval; backing off goes on from
   * there.
   */
  protected async pollOnce(): Promise<void> {
    await this.refresh();
    const failure = this.failure();
    const retryAfter = this._retryAfter;
    this._retryAfter = null;
    if (failure === null) {
      return;
    }
    if (retryAfter !== null && !this._disposed && this._scheduled > 0) {
      const { max } = this._poll.frequency;
      const wait = Math.min(Math.max(retryAfter * 1000, this._scheduled), max);
      void this._poll.schedule({ interval: wait, phase: 'rejected' });
      return;
    }
    throw new Error(failure);
  }

  /** (Re)start or stop the poll when the delay it should use changed. */
  protected schedule(): void {
    const delay = this._disposed ? 0 : this.pollDelay();
    if (delay === this._scheduled) {
      return;
    }
    this._scheduled = delay;
    if (delay <= 0) {
      void this._poll.stop();
      return;
    }
    this._poll.frequency = { interval: delay, backoff: true, max: Math.max(delay, MAX_BACKOFF) };
    void this._poll.schedule({ interval: delay, phase: 'started' });
  }

  protected set(patch: Partial<S>): void {
    if (this._disposed) {
      return;
    }
    this._state = { ...this._state, ...patch };
    this._changed.emit(this._state);
  }

  private _state: S;
  private _interval: number;
  private _visible = false;
  private _disposed = false;
  private _poll: Poll;
  /** The delay the poll runs with, 0 while stopped. */
  private _scheduled = 0;
  private _refreshing: Promise<void> | null = null;
  private _again = false;
  /** Seconds the last failed load was asked to wait (`rememberRetryAfter`), else null. */
  private _retryAfter: number | null = null;
  private _changed = new Signal<this, S>(this);
}

/**
 * Run `step` every `interval` ms until it resolves true (the first run after
 * one interval); rejects with what `step` throws, and stops then.
 */
export function pollUntil(
  name: string,
  interval: number,
  step: () => Promise<boolean>
): Promise<void> {
  return new Promise((resolve, reject) => {
    const poll: Poll = new Poll({
      auto: false,
      factory: async () => {
        try {
          if (await step()) {
            poll.dispose();
            resolve();
          }
        } catch (reason) {
          poll.dispose();
          reject(reason);
        }
      },
      frequency: { interval, backoff: false, max: interval },
      name,
      standby: 'never'
    });
    void poll.schedule({ interval, phase: 'started' });
  });
}
