#!/usr/bin/env bash
# Builds the Debian package with the README's command, checks its metadata and contents, installs
# it on this machine, checks what the install made (the user and group, the folders, the API token,
# check-config as the service's user), upgrades it over itself, removes it and purges it, checking
# what each keeps. Run as root on Debian 12 or later, with or without systemd running; needs
# cargo-deb, and dpkg-dev and binutils for the dependencies and the debug symbols (.ci/run installs
# them).
#
# It refuses to run where border-release is installed or /etc/border-release exists, since it
# purges the package. At the end it purges the package, and removes the border-release user and
# group and the store, logs and spool folders if they did not exist before it ran, so it leaves
# the machine as it found it and can run again.
set -euo pipefail
cd "$(dirname "$0")/.."

pkg=border-release
conf_dir=/etc/border-release
state_folders=(/var/lib/border-release /var/log/border-release /var/spool/border-release)

fail() {
    echo "FAILED: $*" >&2
    exit 1
}
ok() { echo "ok: $*"; }

status() { dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true; }

# "mode owner:group" of a path.
perms() { stat -c '%a %U:%G' "$1"; }

expect_perms() {
    local path=$1 want=$2 got
    [ -e "$path" ] || fail "$path is missing"
    got=$(perms "$path")
    [ "$got" = "$want" ] || fail "$path is $got, expected $want"
    ok "$path $want"
}

[ "$(id -u)" = 0 ] || fail "the package test installs a package: run it as root"
for tool in dpkg-deb dpkg-shlibdeps objcopy runuser; do
    command -v "$tool" >/dev/null || fail "$tool is not installed (apt-get install dpkg-dev binutils util-linux)"
done
cargo deb --version >/dev/null 2>&1 || fail "cargo-deb is not installed (cargo install cargo-deb --locked)"

if [ -n "$(status)" ]; then
    fail "$pkg is installed on this machine ($(status)); this test would purge it: purge it first (dpkg -P $pkg)"
fi
if [ -e "$conf_dir" ]; then
    fail "$conf_dir exists; this test would remove it on purge: move it away first"
fi

# What existed before, so that the clean-up removes only what the test made.
user_existed=no
getent passwd "$pkg" >/dev/null && user_existed=yes
group_existed=no
getent group "$pkg" >/dev/null && group_existed=yes
declare -A folder_existed
for folder in "${state_folders[@]}"; do
    folder_existed[$folder]=no
    [ -e "$folder" ] && folder_existed[$folder]=yes
done

scratch=$(mktemp -d)
clean_up() {
    local rc=$?
    if [ -n "$(status)" ]; then
        dpkg --purge "$pkg" >/dev/null 2>&1 || echo "could not purge $pkg" >&2
    fi
    if [ "$user_existed" = no ] && getent passwd "$pkg" >/dev/null; then
        userdel "$pkg" || true
    fi
    if [ "$group_existed" = no ] && getent group "$pkg" >/dev/null; then
        groupdel "$pkg" || true
    fi
    for folder in "${state_folders[@]}"; do
        if [ "${folder_existed[$folder]}" = no ]; then
            rm -rf "$folder"
        fi
    done
    rm -rf "$scratch"
    exit "$rc"
}
trap clean_up EXIT

echo "== cargo deb --locked (the README's command)"
cargo deb --locked | tee "$scratch/build.out"
deb=$(tail -n 1 "$scratch/build.out")
version=$(cargo pkgid | sed 's/.*[#@]//')
arch=$(dpkg --print-architecture)
[ "$(basename "$deb")" = "${pkg}_${version}_${arch}.deb" ] ||
    fail "cargo deb wrote $deb, expected ${pkg}_${version}_${arch}.deb"
[ -f "$deb" ] || fail "$deb is missing"
ok "built $deb"

echo "== dpkg-deb --info"
dpkg-deb --info "$deb"
field() { dpkg-deb --field "$deb" "$1"; }
[ "$(field Package)" = "$pkg" ] || fail "Package: $(field Package)"
[ "$(field Version)" = "$version" ] || fail "Version: $(field Version), expected $version"
[ "$(field Architecture)" = "$arch" ] || fail "Architecture: $(field Architecture)"
[[ "$(field Maintainer)" =~ ^[^\<]+\ \<[^@\>]+@[^\>]+\>$ ]] || fail "Maintainer: $(field Maintainer)"
[ "$(field Section)" = misc ] || fail "Section: $(field Section)"
[ "$(field Priority)" = optional ] || fail "Priority: $(field Priority)"
# The synopsis, then an extended description.
[ "$(field Description | head -n 1)" = "$(sed -n 's/^description = "\(.*\)"$/\1/p' Cargo.toml)" ] ||
    fail "Description: $(field Description | head -n 1)"
[ "$(field Description | wc -l)" -gt 3 ] || fail "no extended description"
depends=$(field Depends)
[[ "$depends" =~ (^|, )libc6\ \(\>=\ [0-9.]+\)(,|$) ]] || fail "Depends: $depends (no libc6 version)"
[[ "$depends" =~ (^|, )passwd(,|$) ]] || fail "Depends: $depends (no passwd)"
ok "control: Package, Version, Architecture, Maintainer, Section, Priority, Description, Depends: $depends"

mkdir "$scratch/control"
dpkg-deb --control "$deb" "$scratch/control"
[ "$(sort "$scratch/control/conffiles")" = "$(printf '%s\n' "$conf_dir/border-release.toml" "$conf_dir/duties-example.csv")" ] ||
    fail "conffiles: $(cat "$scratch/control/conffiles")"
ok "conffiles: $conf_dir/border-release.toml, $conf_dir/duties-example.csv"
for script in postinst prerm postrm; do
    diff -u "packaging/debian/$script" "$scratch/control/$script" || fail "$script differs from packaging/debian/$script"
    [ -x "$scratch/control/$script" ] || fail "$script is not executable"
done
[ ! -e "$scratch/control/preinst" ] || fail "a preinst was not expected"
ok "maintainer scripts postinst, prerm, postrm as in packaging/debian/"

echo "== dpkg-deb --contents"
dpkg-deb --contents "$deb" | tee "$scratch/contents"
# "mode uid/gid path" of each file, directories left out.
awk '$1 !~ /^d/ { print $1, $2, $6 }' "$scratch/contents" | sort > "$scratch/files"
{
    echo "-rwxr-xr-x 0/0 ./usr/bin/border-release"
    echo "-rw-r--r-- 0/0 ./usr/lib/systemd/system/border-release.service"
    echo "-rw-r--r-- 0/0 ./usr/lib/sysusers.d/border-release.conf"
    echo "-rw-r--r-- 0/0 ./usr/lib/tmpfiles.d/border-release.conf"
    echo "-rw-r----- 0/0 ./etc/border-release/border-release.toml"
    echo "-rw-r--r-- 0/0 ./etc/border-release/duties-example.csv"
    echo "-rw-r--r-- 0/0 ./usr/share/doc/border-release/README.md"
    echo "-rw-r--r-- 0/0 ./usr/share/doc/border-release/CHANGELOG.md"
    echo "-rw-r--r-- 0/0 ./usr/share/doc/border-release/copyright"
    # The example configs and tables (config/duties-example.csv among them once it exists).
    for example in config/*; do
        echo "-rw-r--r-- 0/0 ./usr/share/doc/border-release/examples/$(basename "$example")"
    done
} | sort > "$scratch/expected"
diff -u "$scratch/expected" "$scratch/files" || fail "the package's files are not the expected ones"
ok "files: $(wc -l < "$scratch/files")"

mkdir "$scratch/data"
dpkg-deb --extract "$deb" "$scratch/data"
for pair in \
    systemd/border-release.service:usr/lib/systemd/system/border-release.service \
    systemd/border-release.sysusers.conf:usr/lib/sysusers.d/border-release.conf \
    systemd/border-release.tmpfiles.conf:usr/lib/tmpfiles.d/border-release.conf \
    systemd/border-release.toml:etc/border-release/border-release.toml \
    config/duties-example.csv:etc/border-release/duties-example.csv; do
    cmp "${pair%%:*}" "$scratch/data/${pair#*:}" || fail "/${pair#*:} is not ${pair%%:*}"
done
for example in config/*; do
    cmp "$example" "$scratch/data/usr/share/doc/border-release/examples/$(basename "$example")" ||
        fail "the example $example differs"
done
ok "the unit, sysusers, tmpfiles, config and examples are the repository's files"
binary=$scratch/data/usr/bin/border-release
[ "$("$binary" --version)" = "border-release $version" ] || fail "the binary says $("$binary" --version)"
if objdump -h "$binary" | grep -q '\.debug_info'; then
    fail "the binary still has its debug symbols"
fi
ok "the binary runs, and is stripped"

echo "== dpkg -i $deb"
dpkg -i "$deb" 2>&1 | tee "$scratch/install.out"
[ "$(status)" = "install ok installed" ] || fail "status after install: $(status)"
grep -qF "Edit $conf_dir/border-release.toml" "$scratch/install.out" || fail "no note to edit the config"
grep -qF "systemctl enable --now border-release" "$scratch/install.out" || fail "no note to enable the service"
ok "installed, with the note to edit the config and then enable the service"

getent passwd "$pkg" >/dev/null || fail "no user $pkg"
getent group "$pkg" >/dev/null || fail "no group $pkg"
[ "$(id -gn "$pkg")" = "$pkg" ] || fail "the user's group is $(id -gn "$pkg")"
[ "$(getent passwd "$pkg" | cut -d: -f6)" = /var/lib/border-release ] || fail "home: $(getent passwd "$pkg")"
case "$(getent passwd "$pkg" | cut -d: -f7)" in
    */nologin | */false) ;;
    *) fail "login shell: $(getent passwd "$pkg")" ;;
esac
ok "user and group $pkg, no login shell"

expect_perms "$conf_dir" "750 root:$pkg"
expect_perms "$conf_dir/border-release.toml" "640 root:$pkg"
expect_perms "$conf_dir/api-token" "640 root:$pkg"
[ "$(head -n 1 "$conf_dir/api-token" | tr -d '\n' | wc -c)" -ge 16 ] || fail "the token is shorter than 16 characters"
expect_perms /var/lib/border-release "700 $pkg:$pkg"
expect_perms /var/log/border-release "750 $pkg:$pkg"
expect_perms /var/spool/border-release "750 $pkg:$pkg"
expect_perms /var/spool/border-release/inbox "2770 $pkg:$pkg"
expect_perms /var/spool/border-release/done "750 $pkg:$pkg"
expect_perms /var/spool/border-release/rejected "750 $pkg:$pkg"

if compgen -G "/etc/systemd/system/*.wants/border-release.service" >/dev/null; then
    fail "the service was enabled on install"
fi
if [ -d /run/systemd/system ] && systemctl --quiet is-active border-release.service; then
    fail "the service was started on install"
fi
ok "the service is neither enabled nor started"

echo "== check-config and check-store as the service's user"
(cd / && runuser -u "$pkg" -- border-release check-config) | tee "$scratch/check-config.out"
grep -qF "$conf_dir/border-release.toml: ok" "$scratch/check-config.out" || fail "check-config did not say ok"
(cd / && runuser -u "$pkg" -- border-release --config "$conf_dir/border-release.toml" check-config) >/dev/null
(cd / && runuser -u "$pkg" -- border-release check-store)
[ -f /var/lib/border-release/store.redb ] || fail "check-store made no store"
(cd / && runuser -u "$pkg" -- border-release duties import "$conf_dir/duties-example.csv")
(cd / && runuser -u "$pkg" -- border-release duties list) | grep -q "^duty rates in force on " ||
    fail "duties list did not list the example table"
ok "check-config passes with the shipped config, the service's user can open the store and import the example duty table"

echo "== dpkg -i again (an upgrade): the token and an edited config are kept"
token_sum=$(sha256sum < "$conf_dir/api-token")
echo "# edited by the operator" >> "$conf_dir/border-release.toml"
config_sum=$(sha256sum < "$conf_dir/border-release.toml")
touch /var/spool/border-release/inbox/.kept
dpkg -i "$deb" > "$scratch/upgrade.out" 2>&1 || { cat "$scratch/upgrade.out"; fail "the upgrade failed"; }
[ "$(status)" = "install ok installed" ] || fail "status after the upgrade: $(status)"
[ "$(sha256sum < "$conf_dir/api-token")" = "$token_sum" ] || fail "the upgrade replaced the token"
[ "$(sha256sum < "$conf_dir/border-release.toml")" = "$config_sum" ] || fail "the upgrade replaced the edited config"
expect_perms "$conf_dir/api-token" "640 root:$pkg"
expect_perms "$conf_dir/border-release.toml" "640 root:$pkg"
ok "token and edited config kept"

echo "== dpkg -r $pkg: the config, the token, the store, the logs and the spool stay"
dpkg -r "$pkg"
[ "$(status)" = "deinstall ok config-files" ] || fail "status after remove: $(status)"
[ ! -e /usr/bin/border-release ] || fail "/usr/bin/border-release is still there"
[ ! -e /usr/lib/systemd/system/border-release.service ] || fail "the unit is still there"
[ "$(sha256sum < "$conf_dir/api-token")" = "$token_sum" ] || fail "remove changed the token"
[ "$(sha256sum < "$conf_dir/border-release.toml")" = "$config_sum" ] || fail "remove changed the config"
for kept in /var/lib/border-release/store.redb /var/log/border-release /var/spool/border-release/inbox/.kept; do
    [ -e "$kept" ] || fail "remove deleted $kept"
done
ok "removed; config, token, store, logs and spool kept"

echo "== dpkg -P $pkg: the config goes, the store, the logs and the spool stay"
dpkg -P "$pkg"
[ -z "$(status)" ] || fail "status after purge: $(status)"
[ ! -e "$conf_dir" ] || fail "purge left $conf_dir"
for kept in /var/lib/border-release/store.redb /var/log/border-release /var/spool/border-release/inbox/.kept; do
    [ -e "$kept" ] || fail "purge deleted $kept"
done
getent passwd "$pkg" >/dev/null || fail "purge removed the user, who still owns the store"
if compgen -G "/etc/systemd/system/*.wants/border-release.service" >/dev/null ||
    [ -L /etc/systemd/system/border-release.service ]; then
    fail "purge left a link of the unit in /etc/systemd/system"
fi
ok "purged; $conf_dir gone, the store, logs, spool and user kept"

echo "package test: passed"
