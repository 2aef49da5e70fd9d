/** Every CLI command, in the order `deltac --help` lists them. */
import type { Command } from '../main.js';
import { analyzeCommand } from './analyze.js';
import { convertCommand } from './convert.js';
import { inspectCommand } from './inspect.js';
import { kernelsCommand } from './kernels.js';
import { previewCommand } from './preview.js';
import { printCommand } from './print.js';
import { reportCommand } from './report.js';
import { verifyCommand } from './verify.js';

export const COMMANDS: Command[] = [convertCommand, verifyCommand, reportCommand, analyzeCommand, kernelsCommand, inspectCommand, printCommand, previewCommand];
