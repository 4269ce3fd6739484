#!/usr/bin/env node
// Thin launcher: the CLI lives in the compiled library (npm install builds it).
import { main } from '../dist/cli/main.js';
void main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
