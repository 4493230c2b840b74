import type { AccessRepo } from './access-repo.ts';

type SeenUser = { id: string; email: string | undefined; emailVerified: boolean };

/**
 * Records the users the gateway sees (CONTRACT §3) without putting a write on
 * every request: a user is written on first sight, when their email changes, and
 * at most once per `intervalMs` after that. Bounded memory.
 *
 * Off the request path: `seen()` only notes the user; one background loop writes the
 * noted users one at a time. While another process holds the database's write lock,
 * a burst of new users is one waiting write plus a bounded set of notes — not a
 * write per request queued in front of the native API's writes. A write that fails
 * is forgotten (the user is noted again on the next request).
 */
export class UserRecorder {
  readonly #seen = new Map<string, { at: number; email: string | undefined; verified: boolean }>();
  readonly #pending = new Map<string, SeenUser>();
  #draining = false;

  constructor(
    private readonly access: AccessRepo,
    private readonly onError: (err: unknown) => void,
    private readonly intervalMs = 10 * 60_000,
    private readonly maxEntries = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  seen(user: SeenUser): void {
    const at = this.now();
    const last = this.#seen.get(user.id);
    if (last && at - last.at < this.intervalMs && last.email === user.email && last.verified === user.emailVerified) return;
    this.#seen.delete(user.id);
    if (this.#seen.size >= this.maxEntries) this.#seen.delete(this.#seen.keys().next().value!);
    this.#seen.set(user.id, { at, email: user.email, verified: user.emailVerified });
    this.#pending.delete(user.id);
    if (this.#pending.size >= this.maxEntries) {
      const oldest = this.#pending.keys().next().value!;
      this.#pending.delete(oldest);
      this.#seen.delete(oldest);
    }
    this.#pending.set(user.id, { id: user.id, email: user.email, emailVerified: user.emailVerified });
    if (!this.#draining) void this.#drain();
  }

  /** Resolves when every noted user has been written (or failed): for tests and shutdown. */
  async idle(): Promise<void> {
    while (this.#draining || this.#pending.size > 0) await new Promise((r) => setTimeout(r, 5));
  }

  async #drain(): Promise<void> {
    this.#draining = true;
    try {
      // Started from a request: let that request go first.
      await new Promise((r) => setImmediate(r));
      for (;;) {
        const next = this.#pending.values().next();
        if (next.done) break;
        const user = next.value;
        this.#pending.delete(user.id);
        try {
          await this.access.recordUser(user);
        } catch (err) {
          this.#seen.delete(user.id);
          this.onError(err);
        }
      }
    } finally {
      this.#draining = false;
    }
  }
}
