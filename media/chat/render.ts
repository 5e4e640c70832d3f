/**
 * Markdown rendering for the chat, with no DOM dependency (the unit tests run it under Node).
 *
 * Entries carry agent output, which is untrusted: raw HTML is escaped (markdown-it with `html: false`),
 * links are kept only for http, https and mailto, and images are not rendered (they would be fetched
 * from wherever the agent points, and the webview's CSP blocks them anyway).
 */
import MarkdownIt from 'markdown-it';

const SAFE_LINK = /^(?:https?:|mailto:)/i;

/** Whether a (normalized) link target may become a clickable link. */
export function isSafeLink(url: string): boolean {
  return SAFE_LINK.test(url.trim());
}

function createRenderer() {
  const md = new MarkdownIt({ html: false, linkify: true, breaks: true });
  md.validateLink = isSafeLink;
  md.disable('image');
  const renderLinkOpen = md.renderer.rules.link_open;
  // The destination as a tooltip: the link text is the agent's, and may not say where it goes.
  md.renderer.rules.link_open = (tokens, idx, options, env, self) => {
    const token = tokens[idx];
    const href = token?.attrGet('href');
    if (token && href) token.attrSet('title', href);
    return renderLinkOpen ? renderLinkOpen(tokens, idx, options, env, self) : self.renderToken(tokens, idx, options);
  };
  // Aligned table columns come as style attributes, which the webview's CSP blocks: use classes instead.
  for (const rule of ['th_open', 'td_open']) {
    md.renderer.rules[rule] = (tokens, idx, options, _env, self) => {
      const token = tokens[idx];
      const style = token?.attrGet('style');
      const align = typeof style === 'string' ? /^text-align:(left|right|center)$/.exec(style)?.[1] : undefined;
      if (token?.attrs) token.attrs = token.attrs.filter(([name]) => name !== 'style');
      if (token && align) token.attrJoin('class', `align-${align}`);
      return self.renderToken(tokens, idx, options);
    };
  }
  return md;
}

const markdown = createRenderer();

/** Renders untrusted Markdown to HTML that is safe to assign to `innerHTML`. */
export function renderMarkdown(text: string): string {
  return markdown.render(text);
}

// CSI (colors, cursor moves), OSC (titles, hyperlinks) and two-byte escapes.
const ANSI_ESCAPE = /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]/g;

/** Removes terminal escape sequences that may remain in `terminal` text, so it reads as plain text. */
export function stripAnsi(text: string): string {
  return text.replace(ANSI_ESCAPE, '');
}
