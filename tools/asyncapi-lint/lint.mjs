// Lints an AsyncAPI document with the AsyncAPI parser (@asyncapi/parser: the specification's
// JSON Schema, its Spectral rules, every $ref resolved, every message payload parsed), and checks
// that every JSON Schema file beside it is the payload of one of its messages.
//   node lint.mjs <schemas/asyncapi.yaml> [SCHEMA FILE...]
// The schema files to check are the ones named (make test names those git tracks, so that a
// schema being written does not fail the lint before it is committed), else every
// <Type>.v<N>.json beside the document.
// The payloads are JSON Schema draft 2020-12 (schemaFormat application/schema+json;
// version=draft-2020-12): a schema parser for that format compiles each with Ajv's 2020-12
// validator, so a payload that is not a valid schema fails the lint. Exit 1 on any error.
import { readFileSync, readdirSync } from 'node:fs';
import { basename, dirname, relative, resolve } from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { Parser, fromFile, DiagnosticSeverity } = require('@asyncapi/parser');
const Ajv2020 = require('ajv/dist/2020').default;
const addFormats = require('ajv-formats');

const FORMAT = 'application/schema+json;version=draft-2020-12';

// draft2020 parses payloads of FORMAT: each is compiled with Ajv's 2020-12 validator (which
// checks it against the draft's meta-schema); what does not compile is recorded in errors. (The
// parser asks a schema parser to validate payloads of AsyncAPI 2 documents only, so parse does
// it for 3.)
function draft2020(errors) {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  const check = (input) => {
    try {
      ajv.compile(structuredClone(input.data));
      return [];
    } catch (err) {
      return [{ message: `payload is not a valid JSON Schema (draft 2020-12): ${err.message}`, path: input.path ?? [] }];
    }
  };
  return {
    validate: check,
    parse(input) {
      errors.push(...check(input));
      return input.data;
    },
    getMimeTypes() { return [FORMAT]; },
  };
}

const file = resolve(process.argv[2] ?? 'schemas/asyncapi.yaml');
const parser = new Parser();
const payloadErrors = [];
parser.registerSchemaParser(draft2020(payloadErrors));
const { document, diagnostics } = await fromFile(parser, file).parse();

let failed = false;
for (const e of payloadErrors) {
  failed = true;
  console.log(`error   ${e.path.join('/')}: ${e.message}`);
}
for (const d of diagnostics) {
  const where = (d.path ?? []).join('/');
  if (d.severity === DiagnosticSeverity.Error) {
    failed = true;
    console.log(`error   ${where}: ${d.message}`);
  } else if (d.severity === DiagnosticSeverity.Warning) {
    console.log(`warning ${where}: ${d.message}`);
  }
}
if (!document) {
  console.log(`${file}: not a valid AsyncAPI document`);
  process.exit(1);
}

// Every schema file beside the document is the payload of a message.
const dir = dirname(file);
const text = readFileSync(file, 'utf8');
const named = process.argv.slice(3).map((f) => basename(f));
const schemaFiles = named.length > 0 ? named : readdirSync(dir).filter((f) => /^[A-Za-z]+\.v\d+\.json$/.test(f));
const missing = schemaFiles.filter((f) => !text.includes(`'./${f}'`));
for (const f of missing) {
  failed = true;
  console.log(`error   ${f} is no message's payload: add it to ${file} (channels and components/messages)`);
}

const channels = document.allChannels().all();
const messages = document.allMessages().all();
console.log(`${relative(process.cwd(), file)}: AsyncAPI ${document.version()}, ${channels.length} channels, ${messages.length} messages, ${document.allOperations().all().length} operations${failed ? ': FAILED' : ': ok'}`);
process.exit(failed ? 1 : 0);
