/**
 * Validates our responses against the response schemas of Meta's own OpenAPI document
 * (/work/shared/reference or META_OPENAPI_PATH), loaded with `yaml` and checked with Ajv (JSON Schema
 * 2020-12, the dialect of OpenAPI 3.1). OpenAPI-only keywords (example, discriminator) are ignored.
 */
import { readFileSync } from 'node:fs';
import Ajv2020 from 'ajv/dist/2020';
import { parse } from 'yaml';

const DEFAULT_PATH = '/work/shared/reference/meta-business-messaging-openapi_v23.0.yaml';

type Node = Record<string, unknown>;
const ptr = (segments: string[]) =>
  '#/' + segments.map((s) => encodeURIComponent(s.replace(/~/g, '~0').replace(/\//g, '~1'))).join('/');

export class MetaOpenApi {
  private readonly doc: Node;
  private readonly ajv: Ajv2020;

  constructor(path = process.env.META_OPENAPI_PATH ?? DEFAULT_PATH) {
    this.doc = parse(readFileSync(path, 'utf8')) as Node;
    this.ajv = new Ajv2020({ strict: false, validateFormats: false, validateSchema: false, allErrors: true });
    this.ajv.addSchema({ $id: 'meta', components: this.doc.components, paths: this.doc.paths });
  }

  /** Errors of `body` against the spec's response schema for (path, method, status); [] when valid. */
  responseErrors(path: string, method: string, status: number, body: unknown): string[] {
    const ref = this.responseSchemaRef(path, method, status);
    return this.errors(ref, body);
  }

  componentErrors(schema: string, body: unknown): string[] {
    return this.errors(`meta#/components/schemas/${schema}`, body);
  }

  componentExample(path: string[]): unknown {
    let node: unknown = this.doc;
    for (const p of path) node = (node as Node)[p];
    return node;
  }

  private errors(ref: string, body: unknown): string[] {
    const validate = this.ajv.getSchema(ref) ?? this.ajv.compile({ $ref: ref });
    if (validate(body)) return [];
    return (validate.errors ?? []).map((e) => `${e.instancePath || '(root)'} ${e.message}`);
  }

  private responseSchemaRef(path: string, method: string, status: number): string {
    const paths = this.doc.paths as Record<string, Node>;
    const op = paths[path]?.[method] as Node | undefined;
    if (!op) throw new Error(`spec has no ${method} ${path}`);
    const responses = op.responses as Record<string, Node>;
    const code = String(status);
    let response = responses[code];
    let location = ['paths', path, method, 'responses', code];
    if (!response) throw new Error(`spec has no ${status} response for ${method} ${path}`);
    if (typeof response.$ref === 'string') {
      location = response.$ref.slice(2).split('/');
      response = (this.doc.components as Record<string, Record<string, Node>>).responses[location[2]];
    }
    if (!(response.content as Node | undefined)?.['application/json']) {
      throw new Error(`no JSON schema for ${status} ${method} ${path}`);
    }
    return `meta${ptr([...location, 'content', 'application/json', 'schema'])}`;
  }
}
