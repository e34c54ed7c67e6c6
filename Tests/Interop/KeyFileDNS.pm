# Answers Mail::DKIM's DNS questions from a key file, so the interop scripts never touch the network.
# KEYFILE: lines `selector._domainkey.domain<TAB>TXT value` (the format of `signet verify --key-file`).
package KeyFileDNS;
use strict;
use warnings;
use Mail::DKIM::DNS;
use Net::DNS::RR;

sub install {
    my ($keyfile) = @_;
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
    no warnings 'redefine';
    *Mail::DKIM::DNS::query = sub {
        my ($name, $type) = @_;
        $name = lc $name;
        $name =~ s/\.$//;
        return () unless $type eq 'TXT' && exists $keys{$name};
        return (Net::DNS::RR->new(name => $name, type => 'TXT', txtdata => $keys{$name}));
    };
}

1;
