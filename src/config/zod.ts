import * as z from 'zod/mini';
import en from 'zod/v4/locales/en.js';

/**
 * The settings' schemas (settings.ts, table-schemas.ts) use zod's tree-shakable build, each importing it as
 * `* as z from 'zod/mini'` (re-exported from here as one object, nothing of it could be left out of the bundle), and
 * this module for its English messages only, which the loader turns into its error text (load.ts, expectation()).
 * The full build was 43 % of the bundled bin and about 60 ms of each start on a slow host (docs/benchmarks.md, "One
 * file to load").
 */
z.config(en());

/** What z.preprocess is in zod's full build: `convert` runs on the raw value before `schema` checks it. */
export const preprocess = <S extends z.ZodMiniType>(convert: (v: unknown) => unknown, schema: S) => z.pipe(z.transform(convert), schema);
