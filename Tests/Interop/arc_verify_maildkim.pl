#!/usr/bin/perl
# Validate the ARC chain of each message with Mail::DKIM::ARC::Verifier (independent of Signet).
# usage: arc_verify_maildkim.pl KEYFILE MESSAGE...
# KEYFILE: lines `selector._domainkey.domain<TAB>TXT value`; DNS is answered from it.
# Prints: file, result (pass/fail/none), detail.
use strict;
use warnings;
use Mail::DKIM::ARC::Verifier;
use Net::DNS::RR;

my $keyfile = shift @ARGV;
my %keys;
open(my $kf, '<', $keyfile) or die "cannot read $keyfile: $!";
while (my $line = <$kf>) {
    chomp $line;
    next if $line =~ /^\s*(#|$)/;
    my ($name, $value) = split(/\s+/, $line, 2);
    $name = lc $name;
    $name =~ s/\.$//;
    $keys{$name} = $value;
}
close $kf;

{
    no warnings 'redefine';
    *Mail::DKIM::DNS::query = sub {
        my ($name, $type) = @_;
        $name = lc $name;
        $name =~ s/\.$//;
        return () unless $type eq 'TXT' && exists $keys{$name};
        my $rr = Net::DNS::RR->new(name => $name, type => 'TXT', txtdata => $keys{$name});
        return ($rr);
    };
}

for my $path (@ARGV) {
    open(my $fh, '<:raw', $path) or die "cannot read $path: $!";
    my $arc = Mail::DKIM::ARC::Verifier->new();
    while (my $chunk = <$fh>) {
        $arc->PRINT($chunk);
    }
    close $fh;
    $arc->CLOSE();
    my $detail = $arc->result_detail // '';
    $detail =~ s/[\t\r\n]/ /g;
    printf "%s\t%s\t%s\n", $path, $arc->result // '-', $detail;
}
