// Types for the live document: `node generate.mjs OPENAPI_JSON OUT_D_TS`. Two of openapi-typescript's documented
// options: a `format: binary` schema (an upload's file part, a download) is a Blob, not a string; and a field
// with a default stays optional (the request bodies' defaults are the server's to fill).
import { readFileSync, writeFileSync } from "node:fs";
import openapiTS, { astToString } from "openapi-typescript";
import ts from "typescript";

const BLOB = ts.factory.createTypeReferenceNode(ts.factory.createIdentifier("Blob"));
const [document, out] = process.argv.slice(2);
const ast = await openapiTS(JSON.parse(readFileSync(document, "utf8")), {
  defaultNonNullable: false,
  transform(schema) {
    return schema.format === "binary" ? BLOB : undefined;
  },
});
writeFileSync(out, astToString(ast));
