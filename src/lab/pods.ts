/**
 * The lab's backend pods: one process serving every endpoint of the lab, each on its own IP and
 * port inside its own pod namespace, with the same backend servers `kpsim up` runs
 * (src/proxy/backends.ts), TCP and UDP.
 *
 * A socket belongs to the network namespace of the thread that made it, and Node cannot switch
 * namespaces. So a short Perl program (perl-base is in every Debian) enters each pod's namespace
 * in turn (setns), binds and listens there, then returns to the node's namespace and execs the
 * pods process with those sockets open; the pods process serves on the inherited descriptors.
 * One process for any number of pods: a thousand endpoints cost one Node start, not a thousand.
 * It lives in the node's namespace, so `ip netns pids` finds it even if the lab's record is lost.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KpsimError } from '../errors.js';
import type { BackendStats } from '../proxy/backends.js';
import { ipFamily } from '../util/ip.js';
import type { PodPort } from './plan.js';

/** One socket to make and serve: the endpoint and the namespace it lives in. */
export interface PodSocket extends PodPort {
  readonly ns: string;
  readonly podName?: string;
}

export interface PodsStats {
  /** One per endpoint: TCP connections and requests, UDP datagrams. */
  readonly backends: readonly BackendStats[];
}

/** What the pods process reads (its own spec file): sockets in the order of the inherited descriptors. */
export interface PodsSpec {
  readonly sockets: readonly PodSocket[];
  readonly controlSocket: string;
}

/** setns(2)'s number on the architectures Node runs on (asm-generic for the newer ones). */
const SETNS_SYSCALL: Readonly<Record<string, number>> = { x64: 308, arm64: 268, riscv64: 268, loong64: 268, arm: 375, ia32: 346, ppc64: 350, s390x: 339 };
const CLONE_NEWNET = 0x40000000;

/**
 * Perl: argv = spec-lines-file home-ns command...; each spec line "ns family proto ip port".
 * Binds every socket in its namespace, leaves the descriptors open across exec, and names them
 * in KPSIM_LAB_FDS (in spec order).
 */
const SOCKET_FACTORY = String.raw`
use strict; use warnings; use Socket qw(:all); use Fcntl qw(F_GETFD F_SETFD FD_CLOEXEC);
my ($setns, $newnet, $list, $home, @cmd) = @ARGV;
$setns += 0; $newnet += 0;  # syscall() passes strings as pointers: make them numbers
my %nsfd; my @keep; my @fds;
sub enter { my $ns = shift; unless ($nsfd{$ns}) { open(my $f, '<', "/run/netns/$ns") or die "kpsim-lab: open netns $ns: $!\n"; $nsfd{$ns} = $f; }
  syscall($setns, fileno($nsfd{$ns}), $newnet) == 0 or die "kpsim-lab: setns $ns: $!\n"; }
open(my $in, '<', $list) or die "kpsim-lab: $list: $!\n";
while (my $line = <$in>) {
  chomp $line; next if $line eq '';
  my ($ns, $family, $proto, $ip, $port) = split /\t/, $line;
  enter($ns);
  my $domain = $family == 6 ? AF_INET6 : AF_INET;
  my $type = $proto eq 'UDP' ? SOCK_DGRAM : SOCK_STREAM;
  socket(my $s, $domain, $type, 0) or die "kpsim-lab: socket: $!\n";
  setsockopt($s, SOL_SOCKET, SO_REUSEADDR, 1);
  my $addr = $family == 6 ? pack_sockaddr_in6($port, inet_pton(AF_INET6, $ip)) : pack_sockaddr_in($port, inet_aton($ip));
  bind($s, $addr) or die "kpsim-lab: bind $ip port $port in $ns: $!\n";
  if ($type == SOCK_STREAM) { listen($s, 4096) or die "kpsim-lab: listen $ip port $port: $!\n"; }
  fcntl($s, F_SETFD, fcntl($s, F_GETFD, 0) & ~FD_CLOEXEC);
  push @keep, $s; push @fds, fileno($s);
}
enter($home);
$ENV{KPSIM_LAB_FDS} = join(',', @fds);
exec { $cmd[0] } @cmd or die "kpsim-lab: exec $cmd[0]: $!\n";
`;

/**
 * How to run one of the lab's helper entries (lab-pods, lab-load) with Node: the bundle's file
 * beside the CLI (dist/cli/), tsc's beside this module (dist/src/lab/), or the source under tsx
 * when the tests run from TypeScript. Each is an entry of package.json's bundle script.
 */
export function helperEntry(name: 'lab-pods' | 'lab-load'): string[] {
  const isSource = extname(fileURLToPath(import.meta.url)) === '.ts';
  if (isSource) return [process.execPath, '--import', 'tsx', fileURLToPath(new URL(`./${name}.ts`, import.meta.url))];
  return [process.execPath, fileURLToPath(new URL(`./${name}.js`, import.meta.url))];
}

export interface StartPodsOptions {
  readonly sockets: readonly PodSocket[];
  /** The namespace the process lives in (the node's). */
  readonly home: string;
  readonly controlSocket: string;
  readonly specFile: string;
  readonly logFile: string;
  /** A word on its command line naming the lab, so that it is never mistaken for another process. */
  readonly marker: string;
}

/** Starts the pods process, detached (it outlives `kpsim lab up`), and waits until it answers. */
export async function startPods(opts: StartPodsOptions): Promise<{ pid: number }> {
  const setns = SETNS_SYSCALL[process.arch];
  if (setns === undefined) throw new KpsimError('KPSIM_ERR_LAB_UNAVAILABLE', `the kernel lab does not know setns(2) on ${process.arch}`);
  const spec: PodsSpec = { sockets: opts.sockets, controlSocket: opts.controlSocket };
  writeFileSync(opts.specFile, JSON.stringify(spec));
  const listFile = `${opts.specFile}.lines`;
  writeFileSync(listFile, opts.sockets.map((s) => [s.ns, ipFamily(s.ip), s.protocol, s.ip, s.port].join('\t')).join('\n') + '\n');
  const log = openSync(opts.logFile, 'w');
  let child: ChildProcess;
  try {
    child = spawn('perl', ['-e', SOCKET_FACTORY, String(setns), String(CLONE_NEWNET), listFile, opts.home,
      ...helperEntry('lab-pods'), '--spec', opts.specFile, '--lab', opts.marker], { detached: true, stdio: ['ignore', log, log] });
  } finally {
    closeSync(log);
  }
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.unref();
  const deadline = Date.now() + 30_000;
  for (;;) {
    const done = await Promise.race([exited, sleep(50).then(() => 'waiting' as const)]);
    if (done !== 'waiting') throw new KpsimError('KPSIM_ERR_LAB_COMMAND', `the lab's pods process exited (${done}): ${readLog(opts.logFile)}`);
    try {
      await readPodsStats(opts.controlSocket);
      return { pid: child.pid! };
    } catch {
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new KpsimError('KPSIM_ERR_LAB_COMMAND', `the lab's pods process did not answer within 30 s: ${readLog(opts.logFile)}`);
      }
    }
  }
}

function readLog(file: string): string {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-5).join('; ') || 'no output';
  } catch {
    return 'no output';
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The pods' counters, from their control socket. */
export function readPodsStats(controlSocket: string): Promise<PodsStats> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: controlSocket, path: '/stats', timeout: 5000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as PodsStats);
        } catch (e) {
          reject(e as Error);
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
}

/** New TCP connections each endpoint's backend accepted, by endpoint. */
export function connectionsByEndpoint(stats: PodsStats): Map<string, number> {
  return new Map(stats.backends.map((b) => [b.endpoint, b.connections]));
}
