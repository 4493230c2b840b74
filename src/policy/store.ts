import { watch, type FSWatcher } from 'node:fs';
import { buildPolicyBundle, type PolicyBundle } from './bundle.ts';
import { loadPolicySourceFromDir } from './source.ts';

export interface PolicyStoreEvents {
  onReload?: (bundle: PolicyBundle, previous: PolicyBundle) => void;
  onReloadError?: (error: Error, kept: PolicyBundle) => void;
  /** Extra checks a bundle must pass before it goes live (e.g. every native route has a handler). */
  validate?: (bundle: PolicyBundle) => void;
}

/**
 * Holds the live policy. A reload builds a complete new bundle (parse, compile,
 * verify) and swaps the reference in one assignment; a failed reload keeps the
 * last good bundle. The live bundle is never mutated.
 */
export class PolicyStore {
  #current: PolicyBundle;
  #reloading: Promise<void> | undefined;
  #again = false;
  #watcher: FSWatcher | undefined;
  #timer: NodeJS.Timeout | undefined;

  private constructor(
    readonly dir: string,
    bundle: PolicyBundle,
    readonly events: PolicyStoreEvents,
  ) {
    this.#current = bundle;
  }

  /** Loads the folder; throws PolicyError when the policy is invalid (so `serve` does not start). */
  static async load(dir: string, events: PolicyStoreEvents = {}): Promise<PolicyStore> {
    const bundle = await buildPolicyBundle(await loadPolicySourceFromDir(dir));
    events.validate?.(bundle);
    return new PolicyStore(dir, bundle, events);
  }

  static fromBundle(dir: string, bundle: PolicyBundle, events: PolicyStoreEvents = {}): PolicyStore {
    return new PolicyStore(dir, bundle, events);
  }

  get current(): PolicyBundle {
    return this.#current;
  }

  /** Reloads from disk; concurrent calls coalesce into one more reload after the running one. */
  reload(): Promise<void> {
    if (this.#reloading) {
      this.#again = true;
      return this.#reloading;
    }
    this.#reloading = (async () => {
      do {
        this.#again = false;
        const previous = this.#current;
        try {
          const next = await buildPolicyBundle(await loadPolicySourceFromDir(this.dir));
          this.events.validate?.(next);
          if (next.revision !== previous.revision) {
            this.#current = next;
            this.events.onReload?.(next, previous);
          }
        } catch (err) {
          this.events.onReloadError?.(err as Error, previous);
        }
      } while (this.#again);
    })().finally(() => {
      this.#reloading = undefined;
    });
    return this.#reloading;
  }

  /** Reloads when a file in the folder changes (debounced: editors write in several steps). */
  watch(debounceMs = 200): void {
    if (this.#watcher) return;
    try {
      this.#watcher = watch(this.dir, { recursive: true, persistent: false }, () => {
        clearTimeout(this.#timer);
        this.#timer = setTimeout(() => void this.reload(), debounceMs);
        this.#timer.unref();
      });
      this.#watcher.on('error', () => undefined);
    } catch {
      // Some filesystems cannot be watched; SIGHUP still reloads.
    }
  }

  close(): void {
    clearTimeout(this.#timer);
    this.#watcher?.close();
    this.#watcher = undefined;
  }
}
