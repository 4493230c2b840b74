import packageJson from '../../package.json' with { type: 'json' };

/** The package version (`packagento-gate --version`); bundled into dist/ at build time. */
export const VERSION: string = packageJson.version;
