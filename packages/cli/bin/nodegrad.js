#!/usr/bin/env node
// The `nodegrad` command. A committed file rather than dist/bin.js itself, because npm links a
// workspace's bins at `npm install`, before `npm run build` has written dist/.
// Stack traces (--verbose) through the source maps, to the shipped src/*.ts rather than dist/*.js.
process.setSourceMapsEnabled(true);
import('../dist/bin.js').catch((e) => {
  if (e?.code === 'ERR_MODULE_NOT_FOUND' && String(e.message).includes('dist/bin.js')) {
    console.error("nodegrad: the command is not built yet: run 'npm run build' at the repository root");
    process.exit(1);
  }
  throw e;
});
