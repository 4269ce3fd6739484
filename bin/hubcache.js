#!/usr/bin/env node
// Thin launcher: the CLI lives in the compiled library (npm install builds it).
import module from 'node:module';

// Node 22.1+ keeps compiled code between runs (off with NODE_DISABLE_COMPILE_CACHE=1); Node 20 has no such cache.
module.enableCompileCache?.();
await import('../dist/cli/entry.js');
