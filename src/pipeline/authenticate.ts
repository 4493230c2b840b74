import { parseAuthorization, type Authenticator, type Principal } from '../authn/authenticate.ts';
import { isProblem } from '../http/problem.ts';
import type { Route } from '../policy/route-map.ts';
import { refuse, type Refusal } from './types.ts';

/** Step 3: the credentials the route asks for (a JWT, a project token, or none). */
export async function authenticateFor(authenticator: Authenticator, route: Route, authorization: string[]): Promise<Principal | Refusal> {
  const credentials = parseAuthorization(authorization);
  if (isProblem(credentials)) return refuse(credentials);
  if (route.auth === 'none') return { kind: 'anonymous' };
  const p = route.auth === 'jwt' ? await authenticator.user(credentials) : await authenticator.token(credentials);
  return isProblem(p) ? refuse(p) : p;
}

export function principalLabel(p: Principal): string {
  return p.kind === 'user' ? `user:${p.id}` : p.kind === 'token' ? `token:${p.id}` : 'anonymous';
}
