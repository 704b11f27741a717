/**
 * Creating and configuring a Linux TUN interface, and deleting it: the setup half of the TUN
 * device (tun.ts holds the packet I/O half, TunDevice, and openTun() that joins the two).
 *
 * `@xiaobaidadada/node-tuntap2-wintun` provides what Node cannot do itself: the TUNSETIFF ioctl
 * (IFF_TUN | IFF_NO_PI) on an fd of /dev/net/tun, plus MTU / IPv4 / IPv6 / up ioctls. We call its
 * addon (the same binary its `LinuxTun` class wraps) on an fd we open ourselves, because
 * `LinuxTun` also attaches fs streams to the fd (the 28k pps read path, and a stream close that
 * closes our fd) and can neither name the device nor configure it inside another network
 * namespace. What the library cannot do goes through iproute2 (`ip`): rename (the kernel names it
 * tunN), a second IPv4 address, moving into a namespace, and everything after a move (its ioctls
 * act on the caller's namespace), and deleting the interface.
 *
 * The addon is loaded on first use only: the rest of ipferry (userspace mode, the library without
 * a TUN) imports and runs without it, e.g. where npm did not run its install script.
 */
import { execFile, execFileSync } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { createRequire } from 'node:module';
import { constants as osConstants } from 'node:os';
import { AddressTextError, formatAddress, parsePrefix, type Prefix } from '../wire/address-text.ts';

export type TunErrorCode =
  | 'ENOTSUP' // not Linux
  | 'ENOTUN' // no /dev/net/tun
  | 'EPERM' // not root / no CAP_NET_ADMIN
  | 'EEXIST' // interface name in use
  | 'EINVAL' // bad option (name, MTU, address)
  | 'ENOIP' // iproute2 missing
  | 'ESETUP' // a configuration step failed
  | 'ENOOFFLOAD'; // the kernel refused IFF_VNET_HDR or the offloads (the fast path cannot run; the portable one can)

/** A TUN setup failure with a one-line `message` the CLI can print as it is. */
export class TunError extends Error {
  override name = 'TunError';
  constructor(
    readonly code: TunErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** What the interface is to be: its name, MTU, addresses, link state and namespace. */
export interface TunInterfaceOptions {
  /** Interface name (at most 15 characters); default: the kernel's tunN. */
  name?: string;
  /** MTU; default 1500. Must fit a pool slot (pool.capacity). */
  mtu?: number;
  /** Interface addresses with prefix length, e.g. ["10.0.0.1/30", "fd00::1/64"]. */
  addresses?: readonly string[];
  /** Bring the link up (default true). */
  up?: boolean;
  /**
   * Move the interface into this existing network namespace (`ip netns` name) right after
   * creating it and configure it there. The fd stays valid; the process stays where it is.
   */
  netns?: string;
}

/** A created, configured TUN interface: its open fd, its final name and MTU. */
export interface TunInterface {
  fd: number;
  name: string;
  mtu: number;
}

interface TuntapAddon {
  tuntapInit(fd: number, isTap: boolean): string;
  tuntapSetUp(name: string): void;
  tuntapSetMtu(name: string, mtu: number): void;
  tuntapGetMtu(name: string): number;
  tuntapSetIpv4(name: string, addr: string, prefix: number): void;
  tuntapGetIfIndex(name: string): number;
  tuntapSetIpv6(ifIndex: number, addr: string, prefix: number): void;
}

/**
 * Creates the TUN interface instead of the tuntap2 addon (the fast path: TUNSETIFF with
 * IFF_VNET_HDR and offloads through the FFI, device/tun-vnet.ts). Returns the open fd and the
 * name the kernel gave it; throws a TunError.
 */
export type TunOpener = (name: string | undefined) => { fd: number; name: string };

let addon: TuntapAddon | undefined;
function loadAddon(): TuntapAddon {
  if (addon) return addon;
  const require = createRequire(import.meta.url);
  try {
    const mod = require('@xiaobaidadada/node-tuntap2-wintun/dist/src/ts/linux/Tuntap2Addon.js') as {
      default?: TuntapAddon;
    };
    if (!mod.default) throw new Error('no native addon for this platform');
    addon = mod.default;
    return addon;
  } catch (e) {
    throw new TunError('ENOTSUP', `cannot load the TUN library (@xiaobaidadada/node-tuntap2-wintun): ${oneLine(e)}`);
  }
}

function oneLine(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  return m.split('\n').map((s) => s.trim()).filter(Boolean).join('; ');
}

/** Linux dev_valid_name(): 1..15 bytes, not "." or "..", no '/', ':' or whitespace. */
export function validInterfaceName(name: string): boolean {
  return (
    name.length > 0 &&
    Buffer.byteLength(name) <= 15 &&
    name !== '.' &&
    name !== '..' &&
    !/[/:\s]/.test(name)
  );
}

function ipCommand(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('ip', args, { timeout: 10_000 }, (err, _stdout, stderr) => {
      if (!err) return resolve();
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        return reject(new TunError('ENOIP', 'the ip command (iproute2) is needed to configure the TUN device'));
      }
      const text = String(stderr).trim().split('\n')[0] || err.message.split('\n')[0]!;
      reject(new Error(text));
    });
  });
}

function nsArgs(netns: string | undefined): string[] {
  return netns === undefined ? [] : ['-n', netns];
}

interface ParsedAddress {
  text: string;
  prefix: Prefix;
  addr: string;
}

function parseAddresses(list: readonly string[]): ParsedAddress[] {
  return list.map((text) => {
    let prefix: Prefix;
    try {
      prefix = parsePrefix(text, 'keep');
    } catch (e) {
      const why = e instanceof AddressTextError ? e.message : oneLine(e);
      throw new TunError('EINVAL', `interface address ${text}: ${why}`);
    }
    if (!text.includes('/')) throw new TunError('EINVAL', `interface address ${text}: needs a prefix length (e.g. /24)`);
    return { text: text.trim(), prefix, addr: formatAddress(prefix.bytes, 0, prefix.family) };
  });
}

/**
 * Create and configure a TUN interface and open it. `slotCapacity` is the largest packet a pool
 * slot holds (the MTU must fit). Rejects with a TunError (one-line message) when the interface
 * cannot be created or configured; nothing is left behind in that case.
 */
export async function createTunInterface(opts: TunInterfaceOptions, slotCapacity: number, opener?: TunOpener): Promise<TunInterface> {
  if (process.platform !== 'linux') {
    throw new TunError('ENOTSUP', `TUN devices are supported on Linux only (this is ${process.platform})`);
  }
  const mtu = opts.mtu ?? 1500;
  const name = opts.name;
  const netns = opts.netns;
  if (!Number.isInteger(mtu) || mtu < 68 || mtu > 65535) {
    throw new TunError('EINVAL', `interface MTU ${mtu}: must be an integer from 68 to 65535`);
  }
  if (mtu > slotCapacity) {
    throw new TunError('EINVAL', `interface MTU ${mtu} is larger than a pool slot holds (${slotCapacity} bytes)`);
  }
  if (name !== undefined && !validInterfaceName(name)) {
    throw new TunError('EINVAL', `interface name "${name}": 1 to 15 characters, no '/', ':' or spaces`);
  }
  const addresses = parseAddresses(opts.addresses ?? []);
  if (netns !== undefined && !existsSync(`/run/netns/${netns}`)) {
    throw new TunError('EINVAL', `network namespace ${netns} does not exist`);
  }
  if (name !== undefined) {
    const inUse =
      netns === undefined
        ? existsSync(`/sys/class/net/${name}`)
        : await ipCommand(['-n', netns, 'link', 'show', 'dev', name]).then(
            () => true,
            () => false,
          );
    if (inUse) throw new TunError('EEXIST', `interface name ${name} is already in use`);
  }

  if (opener !== undefined) {
    // the caller creates the device (its errors are TunErrors); configuration goes through iproute2
    const t = opener(name);
    return configureCreated(null, t.fd, t.name, opts, netns, mtu, addresses);
  }
  const lib = loadAddon();
  let fd: number;
  try {
    fd = openSync('/dev/net/tun', 'r+');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENODEV' || code === 'ENXIO') {
      throw new TunError('ENOTUN', 'no /dev/net/tun: this kernel or container has no TUN device (modprobe tun, or give the container /dev/net/tun)');
    }
    if (code === 'EACCES' || code === 'EPERM') {
      throw new TunError('EPERM', 'permission denied opening /dev/net/tun: run as root or with CAP_NET_ADMIN');
    }
    throw new TunError('ESETUP', `cannot open /dev/net/tun: ${oneLine(e)}`);
  }

  let kernelName: string;
  try {
    kernelName = lib.tuntapInit(fd, false);
  } catch (e) {
    closeSync(fd);
    const errno = (e as { errno?: number }).errno;
    if (errno === osConstants.errno.EPERM || errno === osConstants.errno.EACCES) {
      throw new TunError('EPERM', 'not permitted to create a TUN device: run as root or with CAP_NET_ADMIN');
    }
    throw new TunError('ESETUP', `cannot create a TUN device: ${oneLine(e)}`);
  }

  return configureCreated(lib, fd, kernelName, opts, netns, mtu, addresses);
}

/** Name, move and configure a freshly created interface; on failure close and delete it. */
async function configureCreated(
  lib: TuntapAddon | null,
  fd: number,
  kernelName: string,
  opts: TunInterfaceOptions,
  netns: string | undefined,
  mtu: number,
  addresses: ParsedAddress[],
): Promise<TunInterface> {
  const name = opts.name;
  // From here on a failure closes the fd, which removes the (non-persistent) interface; but once
  // it has moved or been renamed we also delete it explicitly, so nothing is left behind.
  let current = kernelName;
  let where: string | undefined;
  try {
    if (name !== undefined && name !== kernelName) {
      try {
        await ipCommand(['link', 'set', 'dev', kernelName, 'name', name]);
      } catch (e) {
        if (e instanceof TunError) throw e;
        if (/exists/i.test((e as Error).message)) throw new TunError('EEXIST', `interface name ${name} is already in use`);
        throw new TunError('ESETUP', `cannot name the TUN device ${name}: ${(e as Error).message}`);
      }
      current = name;
    }
    if (netns !== undefined) {
      try {
        await ipCommand(['link', 'set', 'dev', current, 'netns', netns]);
      } catch (e) {
        if (e instanceof TunError) throw e;
        if (/exists/i.test((e as Error).message)) throw new TunError('EEXIST', `interface name ${current} is already in use in namespace ${netns}`);
        throw new TunError('ESETUP', `cannot move ${current} into namespace ${netns}: ${(e as Error).message}`);
      }
      where = netns;
    }
    await configure(lib, current, netns, mtu, addresses, opts.up ?? true);
  } catch (e) {
    try {
      closeSync(fd);
    } catch {
      /* already closed */
    }
    if (where !== undefined) await ipCommand(['-n', where, 'link', 'del', 'dev', current]).catch(() => undefined);
    throw e;
  }
  return { fd, name: current, mtu };
}

async function configure(
  lib: TuntapAddon | null,
  name: string,
  netns: string | undefined,
  mtu: number,
  addresses: ParsedAddress[],
  up: boolean,
): Promise<void> {
  const local = netns === undefined && lib !== null;
  const ns = nsArgs(netns);
  const step = async (what: string, viaLib: (() => void) | null, ipArgs: string[]): Promise<void> => {
    if (local && viaLib) {
      try {
        viaLib();
        return;
      } catch {
        // fall through to iproute2, which also gives the better error text
      }
    }
    try {
      await ipCommand([...ns, ...ipArgs]);
    } catch (e) {
      if (e instanceof TunError) throw e;
      throw new TunError('ESETUP', `${what} on ${name}: ${(e as Error).message}`);
    }
  };
  await step(`cannot set MTU ${mtu}`, () => lib!.tuntapSetMtu(name, mtu), ['link', 'set', 'dev', name, 'mtu', String(mtu)]);
  let v4Done = false;
  for (const a of addresses) {
    const len = a.prefix.length;
    let viaLib: (() => void) | null = null;
    if (a.prefix.family === 4 && !v4Done) {
      // SIOCSIFADDR sets the (one) primary IPv4 address; further ones need `ip addr add`.
      viaLib = () => lib!.tuntapSetIpv4(name, a.addr, len);
      v4Done = true;
    } else if (a.prefix.family === 6) {
      viaLib = () => lib!.tuntapSetIpv6(lib!.tuntapGetIfIndex(name), a.addr, len);
    }
    const ipArgs = a.prefix.family === 6
      ? ['-6', 'addr', 'add', `${a.addr}/${len}`, 'dev', name, 'nodad']
      : ['addr', 'add', `${a.addr}/${len}`, 'dev', name];
    await step(`cannot add address ${a.text}`, viaLib, ipArgs);
  }
  if (up) await step('cannot bring the link up', () => lib!.tuntapSetUp(name), ['link', 'set', 'dev', name, 'up']);
}

/** Delete the interface (rejects when `ip` fails, e.g. the interface is already gone). */
export function deleteInterface(name: string, netns: string | undefined): Promise<void> {
  return ipCommand([...nsArgs(netns), 'link', 'del', 'dev', name]);
}

/** Delete the interface synchronously (for process 'exit' handlers); errors are ignored. */
export function deleteInterfaceSync(name: string, netns: string | undefined): void {
  try {
    execFileSync('ip', [...nsArgs(netns), 'link', 'del', 'dev', name], { stdio: 'ignore', timeout: 5000 });
  } catch {
    /* nothing more we can do */
  }
}
