import { problem } from '../http/problem.ts';
import type { PolicyBundle } from '../policy/bundle.ts';
import type { RouteMatch } from '../policy/route-map.ts';
import { refuse, type Refusal } from './types.ts';
import type { CleanRequest } from './hygiene.ts';

/** Step 2, the route map: segment-exact and case-sensitive; unknown is 404, an unlisted method 405. */
export function matchRoute(bundle: PolicyBundle, method: string, clean: CleanRequest): RouteMatch | Refusal {
  const lookup = bundle.routes.lookup(method, clean.canonical.segments);
  if (lookup.kind === 'not_found') return refuse(problem('not_found', 'no such route'));
  if (lookup.kind === 'method_not_allowed') {
    return refuse(problem('method_not_allowed', `${method} is not allowed here`, { allow: lookup.allow }, { allow: lookup.allow.join(', ') }));
  }
  // GET and HEAD carry no body here: a body on them is how requests get smuggled past proxies.
  if (clean.hasBody && (method === 'GET' || method === 'HEAD')) {
    return refuse(problem('unexpected_body', `a ${method} request takes no body`), true);
  }
  return lookup.match;
}
