import 'reflect-metadata';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { RequestMethod } from '@nestjs/common';
import { METHOD_METADATA, PATH_METADATA } from '@nestjs/common/constants';
import { parse } from 'yaml';
import { AdminController } from './admin/admin.controller';
import { CloudApiController } from './cloud-api/cloud-api.controller';

const DOC = join(__dirname, '../../../docs/openapi.yaml');
const shape = (p: string) =>
  p
    .replace(/:\w+/g, '{}')
    .replace(/\{\w+\}/g, '{}')
    .replace(/\/+$/, '');

/** docs/openapi.yaml must describe every route the controllers serve (and nothing they do not). */
describe('docs/openapi.yaml', () => {
  const doc = parse(readFileSync(DOC, 'utf8')) as { paths: Record<string, Record<string, unknown>> };
  const documented = new Set(
    Object.entries(doc.paths).flatMap(([p, ops]) =>
      Object.keys(ops)
        .filter((m) => ['get', 'post', 'put', 'patch', 'delete'].includes(m))
        .map((m) => `${m.toUpperCase()} ${shape(p)}`),
    ),
  );
  const served = [AdminController, CloudApiController].flatMap((c) => {
    const base = Reflect.getMetadata(PATH_METADATA, c) as string;
    return Object.getOwnPropertyNames(c.prototype).flatMap((name) => {
      const fn = (c.prototype as unknown as Record<string, unknown>)[name] as object;
      const path = Reflect.getMetadata(PATH_METADATA, fn) as string | undefined;
      const method = Reflect.getMetadata(METHOD_METADATA, fn) as RequestMethod | undefined;
      if (path === undefined || method === undefined) return [];
      const full = '/' + [base, path].filter((s) => s && s !== '/').join('/');
      return [`${RequestMethod[method]} ${shape(full)}`];
    });
  });

  it('documents every served route and only those', () => {
    expect(served.length).toBe(30);
    expect([...new Set(served)].sort()).toEqual([...documented].sort());
  });

  it('lists every Cloud API error code the service can answer', () => {
    const description = (doc as unknown as { info: { description: string } }).info.description;
    for (const code of [
      0, 10, 100, 190, 368, 130429, 131000, 131008, 131009, 131026, 131047, 131048, 131051, 131056, 133005,
      133010, 133016, 139100, 139101,
    ]) {
      expect(description).toContain(`| ${code} |`);
    }
  });
});
