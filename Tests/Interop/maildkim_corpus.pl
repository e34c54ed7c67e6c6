#!/usr/bin/perl
# Verify every DKIM-Signature of each message with Mail::DKIM against a fake DNS table, the way
# Mail::DKIM's own test suite does (t/verifier.t replaces Mail::DKIM::DNS::query).
# usage: maildkim_corpus.pl [--strict] DNSFILE MESSAGE...
# DNSFILE: `name<white space>value`; value is TXT text, NXDOMAIN, ~~Query timed out~~ or ~~SERVFAIL~~.
# --strict: Mail::DKIM's Strict mode (rejects rsa-sha1 and RSA keys under 1024 bits, as RFC 8301 asks).
# Prints one line per DKIM signature: path, index (0 = topmost), d=, s=, a=, result, detail.
use strict;
use warnings;
use Mail::DKIM::Verifier;
use Net::DNS::RR;

my $strict = 0;
if (@ARGV && $ARGV[0] eq '--strict') { $strict = 1; shift @ARGV; }
my $dnsfile = shift @ARGV;
my %dns;
open(my $df, '<', $dnsfile) or die "cannot read $dnsfile: $!";
while (my $line = <$df>) {
    $line =~ s/[\r\n]+$//;
    next if $line =~ /^\s*(#|$)/;
    my ($name, $value) = split(/\s+/, $line, 2);
    $value //= '';
    $value = '' if $value eq '""';
    $name = lc $name;
    $name =~ s/\.$//;
    push @{ $dns{$name} }, $value;
}
close $df;

{
    no warnings 'redefine';
    *Mail::DKIM::DNS::query = sub {
        my ($name, $type) = @_;
        $name = lc $name;
        $name =~ s/\.$//;
        die "can only answer TXT\n" unless $type eq 'TXT';
        my $records = $dns{$name};
        if (!$records || $records->[0] eq 'NXDOMAIN') { $@ = 'NXDOMAIN'; return; }
        die "query timed out\n" if $records->[0] eq '~~Query timed out~~';
        if ($records->[0] eq '~~SERVFAIL~~') { $@ = 'SERVFAIL'; return; }
        $@ = '';
        return map { Net::DNS::RR->new(name => $name, type => 'TXT', txtdata => $_) } @$records;
    };
}

for my $path (@ARGV) {
    open(my $fh, '<:raw', $path) or die "cannot read $path: $!";
    my $verifier = Mail::DKIM::Verifier->new(Strict => $strict);
    while (my $chunk = <$fh>) {
        $verifier->PRINT($chunk);
    }
    close $fh;
    $verifier->CLOSE();
    my $index = 0;
    for my $sig ($verifier->signatures) {
        next if $sig->isa('Mail::DKIM::DkSignature');
        my $detail = $sig->result_detail // '';
        $detail =~ s/[\t\r\n]/ /g;
        printf "%s\t%d\t%s\t%s\t%s\t%s\t%s\n", $path, $index++, $sig->domain // '-', $sig->selector // '-',
            $sig->algorithm // '-', $sig->result // 'none', $detail;
    }
}
