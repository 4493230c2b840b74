import type { HttpBindings } from '@hono/node-server';

/** The Hono environment: the app runs on @hono/node-server, with Node's request and response. */
export type Env = { Bindings: HttpBindings };
