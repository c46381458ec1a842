"""What the tool knows about Drupal: a self-contained layer that octopus calls.

This package reads platform trees, renders a site's settings.php and credentials file, and
builds the command lines that install, check, cron, update and log into a site. It never
changes the machine by itself: every function returns a value (a `Platform`, a text, an
`Invocation` to run) and octopus does the writing and running through its own resources and
runner, so plans, journals and rollbacks stay in one place.

Layering: this package imports only installer.errors, installer.runner, installer.templates
and installer.data; never installer.octopus, installer.stack, installer.cli or agents.

Modules:

* `detect`   -- `detect(path) -> Platform` (core family and version, docroot, install
  profiles, a shipped Drush, the minimum PHP, a redis module), `require_php(...)` (the one-line
  refusal when the instance's PHP is too old), `d7_old_short_name(...)`.
* `settings` -- `SiteSettings` (everything a site's settings.php depends on),
  `settings_php(site)` and `credentials_php(...)`: the text of both files, and `new_hash_salt()`
  (made once, at install, and kept in the site's record).
* `drush`    -- `DrupalTool.for_platform(platform)`: the same verbs (install, status, cron,
  cache_rebuild, updatedb, user_login, maintenance) on every core, through the platform's own
  `vendor/bin/drush` on Drupal 8+ or the tool's own `d7tool.php` on Drupal 7, each returning an
  `Invocation` (argv, env, secret env names) and a parser for its result.

How octopus wires it (a sketch; the lead owns octopus):

    platform = detect.detect(Path(platform_dir))                  # platform add / verify
    detect.require_php(platform, instance_php, instance=name)     # refuse a too-new codebase
    salt = record.hash_salt or settings.new_hash_salt()           # kept in the site's record
    site = settings.SiteSettings(platform=platform, domain=..., names=..., dev_names=...,
                                 credentials_file=..., hash_salt=salt, ...)
    write settings.credentials_php(db, redis) to site.credentials_file (0440, root:oN)
    write settings.settings_php(site) to <docroot>/sites/DOMAIN/settings.php (0440)
    tool = drush.DrupalTool.for_platform(platform, php=f"/usr/bin/php{instance_php}")
    inv = tool.install(uri=..., profile=..., site_name=..., site_mail=..., admin_mail=...,
                       locale=..., admin_password=drush.new_admin_password())
    result = runner.run(inv.argv, env=inv.env, timeout=inv.timeout, check=False)  # as oN
    tool.parse_install(result)          # raises DrupalToolError with the installer's own line
"""
