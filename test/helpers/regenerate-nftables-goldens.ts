/**
 * Rewrite the nftables golden files rules/<name>/nftables.v4.txt and .v6.txt from the
 * compiler's output. Tests never write goldens: run this by hand (or `npm run golden`), then
 * review the diff against kube-proxy before committing it.
 *
 *   npx tsx test/helpers/regenerate-nftables-goldens.ts
 *
 * Under `node --test` (which runs every file below test/) it does nothing.
 */
import { regenerateFamilyGoldens, runGoldenScript } from './golden-files.js';
import { nftGoldenFile, renderNftGolden } from './nftables-goldens.js';

await runGoldenScript('regenerate-nftables-goldens', () => regenerateFamilyGoldens(nftGoldenFile, renderNftGolden));
