#!/usr/bin/perl
# Memory of a forking server: the process ROOT and its direct children that
# run the same program (for `grove gate`: the acceptor, the api process and
# one process per connection; not the git processes a session starts), from
# /proc/PID/smaps_rollup. All sizes in KiB.
#
#   procmem.pl ROOT once      one line per process: "pid rss pss private",
#                             then "total N rss pss private"
#   procmem.pl ROOT MS        every MS milliseconds until ROOT is gone or a
#                             signal comes: "ms N rss pss private" (ms since
#                             start; N processes; sums over them)
#
# Rss counts every page a process maps, so a sum over forks counts the shared
# binary and libraries once per process; Pss divides each shared page among
# the processes that map it (the sum is what they really use), Private is
# what no other process maps.
use strict;
use warnings;
use Time::HiRes qw(time sleep);

my ($root, $mode) = @ARGV;
die "usage: procmem.pl ROOT once|MS\n" unless defined $mode && $root =~ /^\d+$/;

sub comm { my $pid = shift; open(my $f, '<', "/proc/$pid/comm") or return ''; my $c = <$f> // ''; chomp $c; $c }

sub procs {
	my $name = comm($root);
	my @p = ($root);
	opendir(my $d, '/proc') or die "/proc: $!";
	for my $pid (grep { /^\d+$/ } readdir $d) {
		next if $pid == $root;
		open(my $f, '<', "/proc/$pid/stat") or next;
		my $st = <$f> // next;
		# pid (comm) state ppid ...: comm may contain spaces and parentheses
		$st =~ /\)\s+\S+\s+(\d+)/ or next;
		push @p, $pid if $1 == $root && comm($pid) eq $name;
	}
	return @p;
}

sub mem {
	my $pid = shift;
	open(my $f, '<', "/proc/$pid/smaps_rollup") or return;
	my %m = (Rss => 0, Pss => 0, Private_Clean => 0, Private_Dirty => 0);
	while (<$f>) {
		$m{$1} = $2 if /^(\w+):\s+(\d+) kB/;
	}
	return ($m{Rss}, $m{Pss}, $m{Private_Clean} + $m{Private_Dirty});
}

$| = 1;
if ($mode eq 'once') {
	my @t = (0, 0, 0);
	my $n = 0;
	for my $pid (procs()) {
		my @m = mem($pid) or next;
		print "$pid @m\n";
		$t[$_] += $m[$_] for 0 .. 2;
		$n++;
	}
	print "total $n @t\n";
	exit 0;
}
die "interval must be milliseconds\n" unless $mode =~ /^\d+$/ && $mode > 0;
my $stop = 0;
$SIG{TERM} = $SIG{INT} = sub { $stop = 1 };
my $t0 = time;
while (!$stop && -e "/proc/$root") {
	my @t = (0, 0, 0);
	my $n = 0;
	for my $pid (procs()) {
		my @m = mem($pid) or next;
		$t[$_] += $m[$_] for 0 .. 2;
		$n++;
	}
	printf "%d %d %d %d %d\n", (time - $t0) * 1000, $n, @t;
	sleep($mode / 1000);
}
