#!/usr/bin/perl
# Validate the ARC chain of each message with Mail::DKIM::ARC::Verifier (independent of Signet).
# usage: arc_verify_maildkim.pl KEYFILE MESSAGE...
# KEYFILE: lines `selector._domainkey.domain<TAB>TXT value`; DNS is answered from it.
# Prints: file, result (pass/fail/none), detail.
use strict;
use warnings;
use Mail::DKIM::ARC::Verifier;
use FindBin;
use lib $FindBin::Bin;
use KeyFileDNS;

KeyFileDNS::install(shift @ARGV);

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
