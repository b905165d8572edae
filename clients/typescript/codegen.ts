// graphql-codegen's client preset over the committed SDL and the README's operations:
//   npx graphql-codegen --config clients/typescript/codegen.ts
// writes clients/typescript/generated/ (not committed: tests/test_typed_clients.py generates it
// afresh and type-checks index.ts against it with `tsc --strict`).
import { join } from "node:path";

import type { CodegenConfig } from "@graphql-codegen/cli";

// Paths from this file, so the command works from any directory.
const here = __dirname;

const config: CodegenConfig = {
  schema: join(here, "../../schema.graphql"),
  documents: join(here, "../operations/*.graphql"),
  ignoreNoDocuments: false,
  generates: {
    [join(here, "generated") + "/"]: {
      preset: "client",
      presetConfig: { fragmentMasking: false },
      config: {
        // Every custom scalar must be mapped here: a new one fails the generation instead of
        // coming out as `any`.
        strictScalars: true,
        scalars: {
          // JSON numbers below 2^53 (the SDL says so), exact in a JavaScript number.
          BigInt: "number",
          // RFC 3339 strings, as sent: `new Date(value)` parses them.
          DateTime: "string",
          Date: "string",
          // A file part of a multipart request (graphql-multipart-request-spec); never sent back.
          Upload: { input: "Blob", output: "never" },
        },
        // Error codes as string unions: a misspelled code does not compile, and a switch over
        // them can be checked for exhaustiveness.
        enumsAsTypes: true,
        useTypeImports: true,
        // Operations as strings with their types attached: any fetch can send them.
        documentMode: "string",
      },
    },
  },
};

export default config;
