/** The types the view's parts share, derived from the protocol's schemas. */
import type { z } from 'zod';
import type { DefaultCiOption, HubState } from '../../extension/webviewProtocol';

export interface HubStatus {
  state: HubState;
  message?: string;
}

/** The "choose a default CI" card of a project. */
export interface DefaultCiChoice {
  project: string;
  projectName: string;
  options: z.infer<typeof DefaultCiOption>[];
}
