// Kept in step with package.json by a test (test/cli.test.ts).
export const VERSION = '0.1.0';

/** The one user agent of every request (metadata and bodies); huggingface_hub's `hf_hub/...` style. */
export const USER_AGENT = `hubcache/${VERSION}; hf_hub/js; node/${process.versions.node}`;
