/** The package version (`packagento-gate --version`). */
export { VERSION } from '../config.ts';
