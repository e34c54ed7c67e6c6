#!/usr/bin/perl
# Mail::SRS (Debian libmail-srs-perl) as an independent SRS implementation for the interop tests.
# One request a line on stdin, fields separated by TAB:
#   forward NOW MAXAGE SECRETS ADDRESS ALIAS    reverse NOW MAXAGE SECRETS ADDRESS
# SECRETS are separated by US (0x1f); NOW is the Unix time Mail::SRS sees (its time() is pinned per request).
# One answer a line: "OK<TAB>address[<TAB>case-warning]" or "ERR<TAB>message".
use strict;
use warnings;

our $NOW;
BEGIN { *CORE::GLOBAL::time = sub () { defined $main::NOW ? $main::NOW : CORE::time() }; }
require Mail::SRS;

binmode STDIN;
binmode STDOUT;
$| = 1;
while (my $line = <STDIN>) {
    chomp $line;
    my ($op, $now, $maxage, $secrets, $address, $alias) = split /\t/, $line, -1;
    $NOW = $now;
    my @secrets = split /\x1f/, $secrets, -1;
    my $warned = 0;
    local $SIG{__WARN__} = sub { $warned = 1 if $_[0] =~ /Case insensitive hash match/ };
    my $srs = Mail::SRS->new(Secret => \@secrets, MaxAge => $maxage);
    my $result = eval { $op eq 'forward' ? $srs->forward($address, $alias) : $srs->reverse($address) };
    if ($@) {
        my $message = $@;
        $message =~ s/[\r\n\t]+/ /g;
        print "ERR\t$message\n";
    } else {
        print "OK\t$result", ($warned ? "\tcase-warning" : ""), "\n";
    }
}
