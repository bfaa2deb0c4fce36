import { LimitExceededError } from '@keyway/errors';

export interface FairShareOptions {
  /** Concurrent upstream requests for everybody together (the pool's connections). */
  capacity: number;
  /** Concurrent upstream requests one user may hold, so no user can take the whole pool. */
  perUser: number;
  /** Requests of one user that may wait for a slot; beyond that they are refused at once (0: none wait). */
  queuePerUser: number;
  /** The longest a request waits for a slot before it is refused. */
  maxWaitMs: number;
}

/** Gives a slot back; calling it more than once is harmless. */
export type Release = () => void;

interface Waiter {
  grant(release: Release): void;
  timer: NodeJS.Timeout;
}

interface UserState {
  active: number;
  waiting: Waiter[];
}

/**
 * Concurrency slots for one upstream pool, shared fairly between users: nobody holds more
 * than `perUser` at once, and when the pool is full the freed slots go round-robin to the
 * users that are waiting, so a user with a thousand queued requests does not starve one
 * with a single request. A refusal is a LimitExceededError (a 429 for the client), never a
 * wait without end.
 */
export class FairShare {
  private readonly users = new Map<string, UserState>();
  /** Users with waiting requests, in the order they are served next (a Set keeps insertion order). */
  private readonly turn = new Set<string>();
  private active = 0;

  constructor(private readonly o: FairShareOptions) {}

  /** Slots in use, in total and for one user. */
  inUse(user?: string): number {
    return user === undefined ? this.active : (this.users.get(user)?.active ?? 0);
  }

  acquire(user: string): Promise<Release> {
    const state = this.state(user);
    if (state.active < this.o.perUser && this.active < this.o.capacity && state.waiting.length === 0) {
      return Promise.resolve(this.take(user, state));
    }
    if (state.waiting.length >= this.o.queuePerUser) return Promise.reject(this.refusal(user, state));
    return new Promise<Release>((resolve, reject) => {
      const waiter: Waiter = {
        grant: (release) => {
          clearTimeout(waiter.timer);
          resolve(release);
        },
        timer: setTimeout(() => {
          const i = state.waiting.indexOf(waiter);
          if (i >= 0) state.waiting.splice(i, 1);
          if (state.waiting.length === 0) this.turn.delete(user);
          this.forget(user, state);
          reject(this.refusal(user, state));
        }, this.o.maxWaitMs),
      };
      waiter.timer.unref();
      state.waiting.push(waiter);
      this.turn.add(user);
    });
  }

  private take(user: string, state: UserState): Release {
    state.active++;
    this.active++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      state.active--;
      this.active--;
      this.forget(user, state);
      this.dispatch();
    };
  }

  /** Hands free slots to waiting users, one per user per round. */
  private dispatch(): void {
    let progress = true;
    while (this.active < this.o.capacity && this.turn.size > 0 && progress) {
      progress = false;
      for (const user of [...this.turn]) {
        if (this.active >= this.o.capacity) break;
        const state = this.users.get(user);
        if (!state || state.waiting.length === 0) {
          this.turn.delete(user);
          continue;
        }
        if (state.active >= this.o.perUser) continue;
        const waiter = state.waiting.shift() as Waiter;
        // To the back of the line: the next free slot goes to someone else first.
        this.turn.delete(user);
        if (state.waiting.length > 0) this.turn.add(user);
        waiter.grant(this.take(user, state));
        progress = true;
      }
    }
  }

  private state(user: string): UserState {
    let state = this.users.get(user);
    if (!state) {
      state = { active: 0, waiting: [] };
      this.users.set(user, state);
    }
    return state;
  }

  private forget(user: string, state: UserState): void {
    if (state.active === 0 && state.waiting.length === 0) this.users.delete(user);
  }

  private refusal(user: string, state: UserState): LimitExceededError {
    const mine = state.active >= this.o.perUser;
    return new LimitExceededError(
      mine
        ? `too many concurrent requests for user "${user}" (at most ${this.o.perUser} at once); close some and retry`
        : `the API server connection pool is busy (${this.o.capacity} requests in flight); retry shortly`,
      { user, perUser: mine },
    );
  }
}
