import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.ts';

describe('configuration', () => {
  it('a JWKS URL over plain HTTP is refused unless it is on loopback', () => {
    expect(() => loadConfig({ GATE_JWKS_URL: 'http://idp.example.com/jwks.json' })).toThrow(ConfigError);
    expect(() => loadConfig({ GATE_JWKS_URL: 'http://127.0.0.1:9000/jwks.json' })).not.toThrow();
    expect(() => loadConfig({ GATE_JWKS_URL: 'https://idp.example.com/jwks.json' })).not.toThrow();
  });
});

