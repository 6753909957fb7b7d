#!/usr/bin/perl
# A hosting platform's API, as the gate's integrations meet it, for the
# end-to-end tests: the authorization endpoint (POST /allowed) and the deploy
# webhook (POST /deploy). Its behaviour is driven by files in DIR, so a test
# changes it between steps:
#
#   DIR/keys      lines "FINGERPRINT USER": the keys the platform knows
#   DIR/access    lines "USER APP read|write"
#   DIR/down      exists: /allowed answers 503 (the API is down)
#   DIR/deploy-fail     exists: /deploy answers 500 after some output
#   DIR/deploy-slow     exists: /deploy goes quiet mid-way until it is removed
#                       (10 minutes at most): the test decides how long
#   DIR/deploy-hangup   exists: /deploy closes the connection unanswered
#
# Every request is appended to DIR/requests.log ("METHOD PATH BODY"); the
# last webhook's body and headers go to DIR/webhook.json and
# DIR/webhook.headers. The webhook downloads the archive URL it was given,
# like a builder, into DIR/archive.tar.gz and says how many bytes came.
#
# usage: platform.pl DIR   (prints nothing; writes the port to DIR/port)
use strict;
use warnings;
use IO::Socket::INET;
use JSON::PP;
use HTTP::Tiny;

my $dir = shift or die "usage: platform.pl DIR\n";
my $srv = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 64, ReuseAddr => 1)
	or die "listen: $!\n";
open(my $pf, '>', "$dir/port.tmp") or die; print $pf $srv->sockport, "\n"; close $pf;
rename("$dir/port.tmp", "$dir/port") or die;
$SIG{CHLD} = 'IGNORE';
$SIG{TERM} = sub { exit 0 };

sub slurp { my ($f) = @_; open(my $h, '<', $f) or return ''; local $/; my $s = <$h>; close $h; return $s }
sub spew { my ($f, $s) = @_; open(my $h, '>', $f) or die "$f: $!"; print $h $s; close $h }
sub append { my ($f, $s) = @_; open(my $h, '>>', $f) or die "$f: $!"; print $h $s; close $h }

sub respond {
	my ($c, $status, $type, $body) = @_;
	print $c "HTTP/1.1 $status\r\nContent-Type: $type\r\nContent-Length: " . length($body) .
		"\r\nConnection: close\r\n\r\n$body";
}

sub allowed {
	my ($c, $req) = @_;
	return respond($c, '503 Service Unavailable', 'text/plain', "maintenance\n") if -e "$dir/down";
	my %keys = map { split ' ', $_, 2 } grep { /\S/ } split /\n/, slurp("$dir/keys");
	my $user = $keys{$req->{fingerprint} // ''};
	my $out;
	if (!defined $user) {
		$out = { allowed => JSON::PP::false, message => "This key is not registered: add it in your account settings." };
	} elsif ($req->{action} eq 'login') {
		$out = { allowed => JSON::PP::true, user => $user };
	} else {
		my $app = $req->{app} // '';
		my ($level) = map { (split ' ')[2] } grep { my @f = split ' '; @f == 3 && $f[0] eq $user && $f[1] eq $app }
			split /\n/, slurp("$dir/access");
		my $need = $req->{action} eq 'git-receive-pack' ? 'write' : 'read';
		my $ok = defined $level && ($level eq 'write' || $need eq 'read');
		$out = $ok ? { allowed => JSON::PP::true, user => $user }
			: { allowed => JSON::PP::false, user => $user,
			    message => defined $level ? "You can only read $app: ask its owner for write access."
						      : "You are not a collaborator of $app." };
	}
	respond($c, '200 OK', 'application/json', encode_json($out));
}

sub deploy {
	my ($c, $body, $headers) = @_;
	spew("$dir/webhook.json", $body);
	spew("$dir/webhook.headers", $headers);
	if (-e "$dir/deploy-hangup") { close $c; return }
	my $req = decode_json($body);
	my $fail = -e "$dir/deploy-fail";
	print $c "HTTP/1.1 " . ($fail ? "500 Internal Server Error" : "200 OK") .
		"\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n";
	print $c "-----> Building $req->{app} at $req->{new} for $req->{pusher}\n";
	my $r = HTTP::Tiny->new(timeout => 30)->get($req->{archive_url});
	if ($r->{success}) {
		spew("$dir/archive.tar.gz", $r->{content});
		print $c "-----> fetched archive: " . length($r->{content}) . " bytes\n";
	} else {
		print $c "-----> archive download failed: $r->{status} $r->{content}\n";
	}
	for (my $t = 0; -e "$dir/deploy-slow" && $t < 6000; $t++) {
		select(undef, undef, undef, 0.1);
	}
	if ($fail) {
		print $c "build failed: no Procfile\n";
	} else {
		print $c "-----> Released $req->{app}";   # no newline: the gate must still show it
	}
	close $c;
}

while (my $c = $srv->accept) {
	my $pid = fork;
	die "fork: $!" unless defined $pid;
	if ($pid) { close $c; next }
	close $srv;
	$c->autoflush(1);
	my $line = <$c> // exit 0;
	my ($method, $path) = split ' ', $line;
	my ($len, $headers) = (0, '');
	while (my $h = <$c>) {
		last if $h =~ /^\r?\n$/;
		$headers .= $h;
		$len = $1 if $h =~ /^Content-Length:\s*(\d+)/i;
	}
	my $body = '';
	read($c, $body, $len) if $len;
	append("$dir/requests.log", "$method $path $body\n");
	if ($method eq 'POST' && $path eq '/allowed') {
		allowed($c, decode_json($body));
	} elsif ($method eq 'POST' && $path eq '/deploy') {
		deploy($c, $body, $headers);
	} else {
		respond($c, '404 Not Found', 'text/plain', "no such endpoint\n");
	}
	exit 0;
}
