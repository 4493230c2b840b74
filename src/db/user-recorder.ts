import type { AccessRepo } from './access-repo.ts';

/**
 * Records the users the gateway sees (CONTRACT §3) without putting a write on
 * every request: a user is written on first sight, when their email changes, and
 * at most once per `intervalMs` after that. Bounded memory; writes are fire-and-forget
 * and never delay or change a decision.
 */
export class UserRecorder {
  readonly #seen = new Map<string, { at: number; email: string | undefined; verified: boolean }>();

  constructor(
    private readonly access: AccessRepo,
    private readonly onError: (err: unknown) => void,
    private readonly intervalMs = 10 * 60_000,
    private readonly maxEntries = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  seen(user: { id: string; email: string | undefined; emailVerified: boolean }): void {
    const at = this.now();
    const last = this.#seen.get(user.id);
    if (last && at - last.at < this.intervalMs && last.email === user.email && last.verified === user.emailVerified) return;
    this.#seen.delete(user.id);
    if (this.#seen.size >= this.maxEntries) this.#seen.delete(this.#seen.keys().next().value!);
    this.#seen.set(user.id, { at, email: user.email, verified: user.emailVerified });
    this.access.recordUser(user).catch((err) => {
      this.#seen.delete(user.id);
      this.onError(err);
    });
  }
}
