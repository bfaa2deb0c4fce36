#!/usr/bin/env node
// Runs the bundle in ../dist when it is up to date with the sources, else the TypeScript
// sources through tsx (tools/build/launch.mjs).
import { launch } from '../../../tools/build/launch.mjs';

await launch(new URL('..', import.meta.url));
