// What brings networks and routes back after a reboot: each network's restore script, and the entry point
// and systemd unit that all networks and routes share (the texts are render/restore.ts's).
import { DhcpRangeSpec } from "../model/dhcpRange";
import { SegmentRecord } from "../model/networkExtension";
import { NetworkSpec } from "../model/network";
import {
  NetworkPaths,
  RESTORE_ENTRY,
  SYSTEMD_UNIT_NAME,
  SYSTEMD_UNIT_PATH,
  SYSTEMD_WANTS_LINK,
} from "../naming";
import { ObservedNetwork } from "../observe/observed";
import { Action } from "../ops/action";
import * as ops from "../ops/ops";
import { homeDevice } from "./segment";
import {
  renderNetworkRestore,
  renderRestoreEntry,
  RestoreFirewall,
  renderSystemdUnit,
} from "../render/restore";

/**
 * Virtnet's boot-time pieces shared by all networks and routes: the entry point and, on systemd hosts, an
 * enabled unit. `keep`: something still needs them; otherwise they go, so a host is left as it was.
 */
export function restoreGlobalActions(observed: ObservedNetwork, keep: boolean): Action[] {
  const r = observed.restore;
  const actions: Action[] = [];
  if (keep) {
    const entry = renderRestoreEntry();
    if (r.entry !== entry) actions.push(ops.writeFile(RESTORE_ENTRY, entry, r.entry, { mode: "0755" }));
    if (r.systemd) {
      const unit = renderSystemdUnit();
      if (r.unit !== unit) {
        actions.push(ops.writeFile(SYSTEMD_UNIT_PATH, unit, r.unit, { systemdReads: true }));
        actions.push(ops.reloadSystemdUnits());
      }
      if (!r.unitEnabled && r.wantsDir)
        actions.push(ops.symlink(`enable ${SYSTEMD_UNIT_NAME}`, SYSTEMD_UNIT_PATH, SYSTEMD_WANTS_LINK));
    }
    return actions;
  }
  if (r.unitEnabled) actions.push(ops.discardFiles(`disable ${SYSTEMD_UNIT_NAME}`, SYSTEMD_WANTS_LINK));
  if (r.unit !== undefined) {
    actions.push(ops.discardFiles(`remove ${SYSTEMD_UNIT_PATH}`, SYSTEMD_UNIT_PATH));
    if (r.systemd) actions.push(ops.reloadSystemdUnits(true));
  }
  if (r.entry !== undefined) actions.push(ops.discardFiles(`remove ${RESTORE_ENTRY}`, RESTORE_ENTRY));
  return actions;
}

/** The network's own restore script, written at every apply; none for a transient network (autostart: false). */
export function networkRestoreActions(
  spec: NetworkSpec,
  ranges: DhcpRangeSpec[],
  observed: ObservedNetwork,
  paths: NetworkPaths,
  firewall: RestoreFirewall,
  segment?: SegmentRecord,
): Action[] {
  const stretched = segment && {
    device: homeDevice(spec.name, spec.bridge.name, segment),
    peers: segment.members.map((m) => m.address),
  };
  const want =
    spec.autostart === false ? undefined : renderNetworkRestore(spec, ranges, paths, firewall, stretched);
  const have = observed.restore.network;
  if (want === have) return [];
  if (want === undefined) return [ops.removeFile(paths.restoreScript, have!)];
  return [ops.writeFile(paths.restoreScript, want, have)];
}
