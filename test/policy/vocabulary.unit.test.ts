import { describe, expect, it } from 'vitest';
import { NATIVE_ACTIONS, WORKSPACE_ROLES } from '../../src/domain.ts';
import { buildVocabulary, closest, editDistance } from '../../src/policy/vocabulary.ts';

describe('the vocabulary of a policy folder', () => {
  it('is the native actions first, then the route map\'s in first-declared order', () => {
    const v = buildVocabulary([
      { action: 'licence:list', targeted: false },
      { action: 'report:read', targeted: false },
      { action: 'licence:list', targeted: false },
      { action: 'token:read', targeted: false },
      { action: 'report:share', targeted: true },
    ]);
    expect(v.actions).toEqual([...NATIVE_ACTIONS, 'licence:list', 'report:read', 'report:share']);
    expect(v.indexOf('report:read')).toBe(NATIVE_ACTIONS.length + 1);
    expect(v.has('report:nope')).toBe(false);
  });

  it('gives a new action decided on a target the workspace roles; the native ones keep theirs', () => {
    const v = buildVocabulary([
      { action: 'report:share', targeted: true },
      { action: 'guest:invite', targeted: true },
    ]);
    expect(v.targetRoles('report:share')).toEqual(WORKSPACE_ROLES);
    expect(v.targetRoles('guest:invite')).toEqual(['developer', 'viewer']);
    expect(v.targetRoles('token:read')).toBeUndefined();
  });

  it('suggests the closest declared name for a typo, and nothing for a stranger', () => {
    const v = buildVocabulary([{ action: 'report:read', targeted: false }]);
    expect(v.suggest('report:reed')).toBe('report:read');
    expect(v.suggest('guest:lsit')).toBe('guest:list');
    expect(v.suggest('token:steal')).toBeUndefined();
    expect(closest('x', [])).toBeUndefined();
    expect(editDistance('kitten', 'sitting')).toBe(3);
  });
});
