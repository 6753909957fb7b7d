#!/usr/bin/perl
# Writes a deterministic `git fast-import` stream on stdout, for the benchmark
# repositories (see bench/run). Two shapes:
#
#   gen-repo.pl history SEED COMMITS BLOB_EVERY BLOB_MEAN
#       COMMITS commits on main touching a few of ~400 text files each, and a
#       random (incompressible) blob of about BLOB_MEAN bytes every BLOB_EVERY
#       commits; a tag every 500 commits. The shape of an application's
#       history: many small text changes, some binary assets.
#   gen-repo.pl big SEED FILES SIZE PER_COMMIT
#       FILES random files of SIZE bytes, PER_COMMIT of them per commit, and
#       40 small text files per commit.
#
# Text comes from Perl's own drand48 (the same on every platform since 5.20);
# random bytes from AES-CTR keyed by the seed, so the same arguments always
# give the same repository, byte for byte.
use strict;
use warnings;

my ($mode, $seed, @args) = @ARGV;
die "usage: gen-repo.pl history|big SEED ...\n" unless $mode && defined $seed;
srand($seed);
binmode STDOUT;

my $key = sprintf "%032x", $seed;
open(my $rnd, '-|', "openssl enc -aes-128-ctr -K $key -iv 0 -nosalt -in /dev/zero 2>/dev/null")
	or die "openssl: $!";
binmode $rnd;
sub random_bytes {
	my ($n) = @_;
	my $buf = '';
	while (length($buf) < $n) {
		my $got = read($rnd, $buf, $n - length($buf), length($buf));
		die "openssl stream ended\n" unless $got;
	}
	return $buf;
}

my $time = 1700000000;
my $mark = 0;
sub commit_header {
	my ($msg) = @_;
	$time += 600;
	$mark++;
	print "commit refs/heads/main\nmark :$mark\n";
	print "author Bench Author <bench\@example.com> $time +0000\n";
	print "committer Bench Author <bench\@example.com> $time +0000\n";
	print "data ", length($msg), "\n$msg\n";
}
sub file_inline {
	my ($path, $data) = @_;
	print "M 100644 inline $path\ndata ", length($data), "\n", $data, "\n";
}

my @words = qw(alpha beta gamma delta request response buffer config deploy
	router storage replica commit branch merge object packet stream handler
	error result value index table cache token user session build release
	return if else for while struct int char const static void size_t len);
sub line {
	my $n = 3 + int(rand(9));
	my $indent = "\t" x int(rand(3));
	return $indent . join(' ', map { $words[int(rand(@words))] } 1 .. $n) . ";\n";
}

if ($mode eq 'history') {
	my ($commits, $blob_every, $blob_mean) = @args;
	my (%files, @paths);
	for my $i (0 .. 399) {
		my $p = sprintf "src/mod%02d/file%03d.%s", $i % 40, $i, (qw(c h md txt))[$i % 4];
		push @paths, $p;
		$files{$p} = [ map { line() } 1 .. (40 + int(rand(200))) ];
	}
	my $asset = 0;
	for my $c (1 .. $commits) {
		commit_header("change $c\n\nTouch a few files" . ($c % $blob_every ? "" : " and add an asset") . ".\n");
		if ($c == 1) {
			file_inline($_, join('', @{ $files{$_} })) for @paths;
			next;
		}
		for (1 .. 1 + int(rand(4))) {
			my $p = $paths[int(rand(@paths))];
			my $l = $files{$p};
			for (1 .. 1 + int(rand(6))) {
				my $at = int(rand(@$l + 1));
				if (rand() < 0.4 && @$l > 20) { splice(@$l, $at, 1, line()) }
				else { splice(@$l, $at, 0, line()) }
			}
			file_inline($p, join('', @$l));
		}
		if ($c % $blob_every == 0) {
			my $size = int($blob_mean * (0.25 + 1.5 * rand()));
			file_inline(sprintf("assets/img%04d.bin", $asset++), random_bytes($size));
		}
		print "\n";
		print "reset refs/tags/v", $c / 500, "\nfrom :$mark\n\n" if $c % 500 == 0;
	}
} elsif ($mode eq 'big') {
	my ($nfiles, $size, $per) = @args;
	for my $i (0 .. $nfiles - 1) {
		if ($i % $per == 0) {
			commit_header("big files " . ($i + 1) . "\n");
			# Some small files too: with more than receive.unpackLimit (100)
			# objects the receiver keeps the pack, as it would for any
			# real push of this size, instead of exploding it.
			file_inline(sprintf("docs/c%02d/n%02d.txt", $i, $_), join('', map { line() } 1 .. 20)) for 1 .. 40;
		}
		file_inline(sprintf("data/blob%02d.bin", $i), random_bytes($size));
		print "\n" if ($i + 1) % $per == 0 || $i == $nfiles - 1;
	}
} else {
	die "unknown mode $mode\n";
}
close $rnd;
