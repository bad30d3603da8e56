// A small element tree over fast-xml-parser's ordered output, that remembers what the importer read, so
// that everything it did not read can be reported: nothing in a libvirt XML file is dropped silently.
import { XMLParser, XMLValidator } from "fast-xml-parser";
import { LibvirtXmlError } from "./errors";

export { LibvirtXmlError };

export interface XmlNode {
  name: string;
  /** Attributes in document order. */
  attrs: [string, string][];
  children: XmlNode[];
  /** The element's own text, trimmed ("" when none). */
  text: string;
  parent?: XmlNode;
  /** Set when the importer handled the element (or reported it). */
  used: boolean;
  usedAttrs: Set<string>;
  usedText: boolean;
  /** Position in document order (pre-order), to report in the order of the file. */
  order: number;
}

type Ordered = Record<string, unknown> & { ":@"?: Record<string, string> };

const parser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: "",
  allowBooleanAttributes: false,
  parseAttributeValue: false,
  parseTagValue: false,
  trimValues: true,
  ignoreDeclaration: true,
  ignorePiTags: true,
});

function toNode(entry: Ordered, parent: XmlNode | undefined, counter: { n: number }): XmlNode | undefined {
  const name = Object.keys(entry).find((k) => k !== ":@");
  if (name === undefined || name === "#text" || name.startsWith("?") || name.startsWith("!"))
    return undefined;
  const node: XmlNode = {
    name,
    attrs: Object.entries(entry[":@"] ?? {}).map(([k, v]) => [k, String(v)]),
    children: [],
    text: "",
    parent,
    used: false,
    usedAttrs: new Set(),
    usedText: false,
    order: counter.n++,
  };
  const texts: string[] = [];
  for (const c of (entry[name] as Ordered[]) ?? []) {
    if ("#text" in c) texts.push(String(c["#text"]));
    else {
      const child = toNode(c, node, counter);
      if (child) node.children.push(child);
    }
  }
  node.text = texts.join("").trim();
  return node;
}

/** Parses a document and returns its root element; malformed XML throws a LibvirtXmlError saying where. */
export function parseXml(xml: string): XmlNode {
  if (typeof xml !== "string") throw new LibvirtXmlError(["the libvirt XML must be a string"]);
  if (xml.trim() === "") throw new LibvirtXmlError(["malformed XML: the document is empty"]);
  const valid = XMLValidator.validate(xml);
  if (valid !== true) {
    const { msg, line, col } = valid.err;
    throw new LibvirtXmlError([`malformed XML at line ${line}, column ${col}: ${msg}`]);
  }
  let parsed: Ordered[];
  try {
    parsed = parser.parse(xml) as Ordered[];
  } catch (e) {
    throw new LibvirtXmlError([`malformed XML: ${(e as Error).message}`]);
  }
  const counter = { n: 0 };
  const roots = parsed.map((e) => toNode(e, undefined, counter)).filter((n): n is XmlNode => n !== undefined);
  if (roots.length === 0) throw new LibvirtXmlError(["malformed XML: there is no root element"]);
  if (roots.length > 1)
    throw new LibvirtXmlError([
      `malformed XML: more than one root element (<${roots.map((r) => r.name).join(">, <")}>)`,
    ]);
  return roots[0];
}

function isNamespaceDeclaration(attribute: string): boolean {
  return attribute === "xmlns" || attribute.startsWith("xmlns:");
}

function quoteAttr(value: string): string {
  return value.includes("'") ? `"${value.replace(/"/g, "&quot;")}"` : `'${value}'`;
}

/** The element as it reads in the file, without its children: `<ip address='10.0.0.1' prefix='24'>`. */
export function describe(node: XmlNode): string {
  const attrs = node.attrs
    .filter(([k]) => !isNamespaceDeclaration(k))
    .map(([k, v]) => ` ${k}=${quoteAttr(v)}`)
    .join("");
  if (node.text && node.children.length === 0) return `<${node.name}${attrs}>${node.text}</${node.name}>`;
  return `<${node.name}${attrs}>`;
}

/** describe(), with the enclosing element for context when there is one below the root. */
export function describeIn(node: XmlNode): string {
  const p = node.parent;
  return p && p.parent ? `${describe(node)} in <${p.name}>` : describe(node);
}

export function attr(node: XmlNode, name: string): string | undefined {
  const hit = node.attrs.find(([k]) => k === name);
  if (!hit) return undefined;
  node.usedAttrs.add(name);
  return hit[1];
}

export function text(node: XmlNode): string {
  node.usedText = true;
  return node.text;
}

export function childrenNamed(node: XmlNode, name: string): XmlNode[] {
  const found = node.children.filter((c) => c.name === name);
  found.forEach((c) => (c.used = true));
  return found;
}

/** Marks an element and everything in it as handled (it was imported or reported as a whole). */
export function useAll(node: XmlNode): void {
  node.used = true;
  node.usedText = true;
  node.attrs.forEach(([k]) => node.usedAttrs.add(k));
  node.children.forEach(useAll);
}

/**
 * What the importer did not read, one message per element (its content included) or attribute: elements
 * under a handled element that were never handled, attributes and text of handled elements never read.
 * Namespace declarations carry no meaning of their own and are not reported.
 */
export function unread(root: XmlNode): { node: XmlNode; message: string }[] {
  const out: { node: XmlNode; message: string }[] = [];
  const walk = (node: XmlNode) => {
    for (const [k, v] of node.attrs) {
      if (node.usedAttrs.has(k) || isNamespaceDeclaration(k)) continue;
      out.push({
        node,
        message: `${describeIn(node)}: attribute ${k}=${quoteAttr(v)} is not supported by virtnet; ignored`,
      });
    }
    if (node.text && !node.usedText)
      out.push({
        node,
        message: `${describeIn(node)}: text "${node.text}" is not supported by virtnet; ignored`,
      });
    for (const c of node.children) {
      if (c.used) walk(c);
      else
        out.push({
          node: c,
          message: `${describeIn(c)}: element <${c.name}> is not supported by virtnet; ignored`,
        });
    }
  };
  walk(root);
  return out;
}
