import type { Context } from 'hono';
import type { z } from 'zod';
import type { SecretBox } from '../crypto/secret-box.ts';
import type { Db } from '../db/client.ts';
import type { Env } from '../http/hono-env.ts';
import type { Allowed } from '../pipeline/types.ts';

/** The path parameters a route pattern may name (policies/routes.txt). */
export type RouteParam = 'ws' | 'p' | 't' | 'user' | 'id' | 'token';

/** What a native (gateway-answered) route's handler receives. */
export interface NativeContext<Body = undefined> {
  c: Context<Env>;
  outcome: Allowed;
  requestId: string;
  /** The body, validated against the handler's schema. */
  body: Body;
  /** A path parameter of the matched route; a route whose pattern lacks it is a bug (500). */
  param(name: RouteParam): string;
}

export interface NativeHandler {
  /** A strict zod schema for the JSON body; routes without one refuse a body. */
  body?: z.ZodType;
  /** When the body may be left out entirely (e.g. PUT /v1/me/workspace). */
  bodyOptional?: boolean;
  handle(ctx: NativeContext<unknown>): Promise<Response>;
}

/** Native handlers keyed by route id (`METHOD PATTERN` from the route map). */
export type NativeHandlers = Record<string, NativeHandler>;

/** What the gateway's own API needs. */
export interface NativeDeps {
  db: Db;
  secretBox: SecretBox;
  inviteUrl: string;
  inviteTtlDays: number;
  now: () => number;
}

/**
 * Declares a native handler: with a `body` schema, `handle` receives the parsed body
 * typed as the schema's output (`| undefined` when `bodyOptional`); without one, the
 * route refuses a body and `ctx.body` is undefined.
 */
export function defineNative<S extends z.ZodType>(def: { body: S; bodyOptional: true; handle(ctx: NativeContext<z.infer<S> | undefined>): Promise<Response> }): NativeHandler;
export function defineNative<S extends z.ZodType>(def: { body: S; bodyOptional?: false; handle(ctx: NativeContext<z.infer<S>>): Promise<Response> }): NativeHandler;
export function defineNative(def: { handle(ctx: NativeContext): Promise<Response> }): NativeHandler;
export function defineNative(def: NativeHandler): NativeHandler {
  return def;
}
