import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * The default order runs one project after the other: the 123 unit files came after every integration file, 87 s
 * of the suite's end on this 2-core host with both cores on them. The integration files wait for much of their time
 * (a broker restarting, a timeout running out, a relay's backoff): the unit files, spread between them in the
 * default order of each project, use those waits instead.
 */
export default class InterleavingSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const integration = sorted.filter((f) => f.project.name === 'integration');
    const others = sorted.filter((f) => f.project.name !== 'integration');
    if (integration.length === 0 || others.length === 0) return sorted;
    const perFile = others.length / integration.length;
    const order: TestSpecification[] = [];
    let taken = 0;
    for (const [i, file] of integration.entries()) {
      order.push(file);
      for (const end = Math.round((i + 1) * perFile); taken < end; taken++) order.push(others[taken]!);
    }
    return order;
  }
}
