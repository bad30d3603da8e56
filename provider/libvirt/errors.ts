// The error of a libvirt XML import (no dependencies: the SDK exports it without loading the XML parser).

/** Errors of an import: each line names the element it is about. */
export class LibvirtXmlError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join("\n"));
    this.name = "LibvirtXmlError";
  }
}
