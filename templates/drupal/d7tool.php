<?php

/**
 * @file
 * Managed by barracuda: the tool's own command line for Drupal 7 sites without Drush.
 *
 *   php d7tool.php --root=DOCROOT --uri=https://example.org COMMAND [--OPTION=VALUE...]
 *
 * Commands (each bootstraps the site whose directory is sites/HOST of --uri):
 *   install      Drupal 7's own installer, non-interactive: --profile, --locale,
 *                --site-name, --site-mail, --account-name, --account-mail,
 *                --update-status=0|1. The admin password comes from the environment
 *                variable BARRACUDA_ACCOUNT_PASS (never from argv, never printed).
 *   status       bootstrap, database, schema versions and pending updates.
 *   cron         drupal_cron_run().
 *   cache-clear  drupal_flush_all_caches().
 *   updatedb     every pending hook_update_N(), in dependency order.
 *   user-login   a one-time login link for uid 1 on --uri.
 *   maintenance  --value=1 puts the site in Drupal's maintenance mode (visitors get its
 *                503 page), --value=0 takes it out.
 *
 * Drupal's own output goes to stderr; the result is one line on stdout:
 *   BARRACUDA-JSON {"ok": true, ...}     (exit 0)
 *   BARRACUDA-JSON {"ok": false, "error": "one line"}   (exit 1; 2 for a usage error)
 */

if (PHP_SAPI !== 'cli') {
  exit(1);
}

const BT_MARKER = 'BARRACUDA-JSON ';
$GLOBALS['bt_done'] = FALSE;

/**
 * Text of Drupal's HTML messages, on one line.
 */
function bt_oneline($text) {
  $text = html_entity_decode(strip_tags(preg_replace('/<(p|br|li|div|h[1-6])\b/i', ' $0', (string) $text)), ENT_QUOTES, 'UTF-8');
  return trim(preg_replace('/\s+/', ' ', $text));
}

/**
 * Prints the result line and exits.
 */
function bt_result(array $data, $code = 0) {
  $noise = '';
  while (ob_get_level() > 0) {
    $noise .= ob_get_clean();
  }
  if (trim($noise) !== '') {
    fwrite(STDERR, $noise . "\n");
  }
  if (function_exists('drupal_get_messages')) {
    $messages = @drupal_get_messages(NULL, TRUE);
    foreach ((array) $messages as $type => $list) {
      foreach ($list as $message) {
        $data['messages'][] = $type . ': ' . bt_oneline($message);
      }
    }
  }
  $GLOBALS['bt_done'] = TRUE;
  fwrite(STDOUT, "\n" . BT_MARKER . json_encode($data, JSON_UNESCAPED_SLASHES) . "\n");
  exit($code);
}

function bt_fail($message, $code = 1) {
  bt_result(array('ok' => FALSE, 'error' => bt_oneline($message)), $code);
}

/**
 * A fatal PHP error, or Drupal exiting on its own, still ends with a result line.
 */
function bt_shutdown() {
  if ($GLOBALS['bt_done']) {
    return;
  }
  $error = error_get_last();
  $fatal = array(E_ERROR, E_PARSE, E_CORE_ERROR, E_COMPILE_ERROR, E_USER_ERROR);
  $noise = '';
  while (ob_get_level() > 0) {
    $noise .= ob_get_clean();
  }
  if ($error && in_array($error['type'], $fatal, TRUE)) {
    $message = 'PHP fatal error: ' . $error['message'] . ' in ' . $error['file'] . ':' . $error['line'];
  }
  else {
    $lines = array_values(array_filter(array_map('bt_oneline', explode("\n", $noise))));
    $message = 'Drupal exited early' . ($lines ? ': ' . end($lines) : '');
  }
  if (trim($noise) !== '') {
    fwrite(STDERR, $noise . "\n");
  }
  $GLOBALS['bt_done'] = TRUE;
  fwrite(STDOUT, "\n" . BT_MARKER . json_encode(array('ok' => FALSE, 'error' => bt_oneline($message)), JSON_UNESCAPED_SLASHES) . "\n");
}

// ----------------------------------------------------------------------------- arguments

// Options may come before or after the command: --name=value only.
$bt_known = array('root', 'uri', 'profile', 'locale', 'site-name', 'site-mail', 'account-name',
  'account-mail', 'update-status', 'value');
$bt_options = array();
$bt_words = array();
$bt_bad = array();
foreach (array_slice($argv, 1) as $bt_arg) {
  if (preg_match('/^--([a-z-]+)=(.*)$/s', $bt_arg, $bt_match) && in_array($bt_match[1], $bt_known, TRUE)) {
    $bt_options[$bt_match[1]] = $bt_match[2];
  }
  elseif (strncmp($bt_arg, '-', 1) === 0) {
    $bt_bad[] = $bt_arg;
  }
  else {
    $bt_words[] = $bt_arg;
  }
}
$bt_command = count($bt_words) === 1 && !$bt_bad ? $bt_words[0] : '';
$bt_commands = array('install', 'status', 'cron', 'cache-clear', 'updatedb', 'user-login',
  'maintenance');
ini_set('display_errors', 'stderr');
ob_start();
register_shutdown_function('bt_shutdown');

if (!in_array($bt_command, $bt_commands, TRUE)) {
  bt_fail('usage: d7tool.php --root=DOCROOT --uri=URL ' . implode('|', $bt_commands)
    . ($bt_bad ? ' (unknown: ' . implode(' ', $bt_bad) . ')' : ''), 2);
}
if (empty($bt_options['root']) || empty($bt_options['uri'])) {
  bt_fail('--root and --uri are required', 2);
}
$bt_root = realpath($bt_options['root']);
if ($bt_root === FALSE || !is_file($bt_root . '/includes/bootstrap.inc')) {
  bt_fail($bt_options['root'] . ' is not a Drupal 7 root (no includes/bootstrap.inc)', 2);
}
$bt_uri = parse_url($bt_options['uri']);
if (empty($bt_uri['host']) || !in_array(isset($bt_uri['scheme']) ? $bt_uri['scheme'] : '', array('http', 'https'), TRUE)) {
  bt_fail('--uri must be an http:// or https:// URL, not ' . $bt_options['uri'], 2);
}
$bt_host = strtolower($bt_uri['host']);
if (!is_file($bt_root . '/sites/' . $bt_host . '/settings.php')) {
  bt_fail('no sites/' . $bt_host . '/settings.php in ' . $bt_root, 2);
}

// ----------------------------------------------------------------------------- a request

$bt_https = $bt_uri['scheme'] === 'https';
$bt_port = isset($bt_uri['port']) ? (int) $bt_uri['port'] : ($bt_https ? 443 : 80);
$bt_authority = $bt_host . (isset($bt_uri['port']) ? ':' . $bt_port : '');
$_SERVER['HTTP_HOST'] = $bt_authority;
$_SERVER['SERVER_NAME'] = $bt_host;
$_SERVER['SERVER_PORT'] = $bt_port;
$_SERVER['SERVER_ADDR'] = '127.0.0.1';
$_SERVER['REMOTE_ADDR'] = '127.0.0.1';
$_SERVER['REQUEST_METHOD'] = 'GET';
$_SERVER['SCRIPT_NAME'] = '/index.php';
$_SERVER['PHP_SELF'] = '/index.php';
$_SERVER['SCRIPT_FILENAME'] = $bt_root . '/index.php';
$_SERVER['REQUEST_URI'] = '/';
$_SERVER['QUERY_STRING'] = '';
$_SERVER['HTTP_USER_AGENT'] = 'barracuda-d7tool';
// drupal_is_cli() needs SERVER_SOFTWARE unset.
unset($_SERVER['SERVER_SOFTWARE']);
if ($bt_https) {
  $_SERVER['HTTPS'] = 'on';
}
else {
  unset($_SERVER['HTTPS']);
}
// Links (the one-time login) are made on this base URL.
$base_url = $bt_uri['scheme'] . '://' . $bt_authority;

chdir($bt_root);
define('DRUPAL_ROOT', $bt_root);

/**
 * Bootstraps to configuration and checks that the site's own directory was chosen.
 */
function bt_configure($host) {
  require_once DRUPAL_ROOT . '/includes/bootstrap.inc';
  drupal_bootstrap(DRUPAL_BOOTSTRAP_CONFIGURATION);
  if (conf_path() !== 'sites/' . $host) {
    bt_fail('Drupal chose ' . conf_path() . ' instead of sites/' . $host);
  }
  if (empty($GLOBALS['databases']['default']['default'])) {
    bt_fail('sites/' . $host . '/settings.php defines no database');
  }
}

/**
 * Whether the site's database answers, and whether Drupal is installed in it.
 */
function bt_database() {
  drupal_bootstrap(DRUPAL_BOOTSTRAP_DATABASE);
  try {
    db_query('SELECT 1')->fetchField();
  }
  catch (Exception $e) {
    return array(FALSE, FALSE, bt_oneline($e->getMessage()));
  }
  try {
    $installed = db_table_exists('system') && db_table_exists('variable')
      && (bool) db_query("SELECT 1 FROM {system} WHERE name = 'system' AND schema_version >= 0")->fetchField();
  }
  catch (Exception $e) {
    $installed = FALSE;
  }
  return array(TRUE, $installed, '');
}

function bt_full($host) {
  bt_configure($host);
  list($db, $installed, $error) = bt_database();
  if (!$db) {
    bt_fail('database: ' . $error);
  }
  if (!$installed) {
    bt_fail('Drupal is not installed in the database of ' . $host);
  }
  drupal_bootstrap(DRUPAL_BOOTSTRAP_FULL);
}

/**
 * The pending updates, per module: array(module => array(number => description)).
 */
function bt_pending(&$warnings) {
  require_once DRUPAL_ROOT . '/includes/install.inc';
  require_once DRUPAL_ROOT . '/includes/update.inc';
  drupal_load_updates();
  $pending = array();
  foreach (update_get_update_list() as $module => $info) {
    if (!empty($info['warning'])) {
      $warnings[] = bt_oneline($info['warning']);
    }
    if (!empty($info['pending'])) {
      $pending[$module] = $info;
    }
  }
  return $pending;
}

// ----------------------------------------------------------------------------- commands

switch ($bt_command) {
  case 'install':
    $pass = getenv('BARRACUDA_ACCOUNT_PASS');
    if ($pass === FALSE || strlen($pass) < 12) {
      bt_fail('install needs the admin password in BARRACUDA_ACCOUNT_PASS (12 characters or more)', 2);
    }
    putenv('BARRACUDA_ACCOUNT_PASS');
    unset($_ENV['BARRACUDA_ACCOUNT_PASS'], $_SERVER['BARRACUDA_ACCOUNT_PASS']);
    $profile = isset($bt_options['profile']) ? $bt_options['profile'] : 'standard';
    if (!preg_match('/^[a-z][a-z0-9_]*$/', $profile) || !is_file(DRUPAL_ROOT . "/profiles/$profile/$profile.info")) {
      bt_fail("install profile '$profile' does not exist in " . DRUPAL_ROOT . '/profiles');
    }
    $mail = isset($bt_options['site-mail']) ? $bt_options['site-mail'] : 'admin@' . $bt_host;
    $settings = array(
      'parameters' => array(
        'profile' => $profile,
        'locale' => isset($bt_options['locale']) ? $bt_options['locale'] : 'en',
      ),
      'forms' => array(
        'install_configure_form' => array(
          'site_name' => isset($bt_options['site-name']) ? $bt_options['site-name'] : $bt_host,
          'site_mail' => $mail,
          'account' => array(
            'name' => isset($bt_options['account-name']) ? $bt_options['account-name'] : 'admin',
            'mail' => isset($bt_options['account-mail']) ? $bt_options['account-mail'] : $mail,
            'pass' => array('pass1' => $pass, 'pass2' => $pass),
          ),
          'site_default_country' => '',
          'date_default_timezone' => 'UTC',
          'clean_url' => TRUE,
          'update_status_module' => (isset($bt_options['update-status']) && !$bt_options['update-status'])
            ? array() : array(1 => TRUE, 2 => TRUE),
        ),
      ),
    );
    unset($pass);
    define('MAINTENANCE_MODE', 'install');
    bt_configure($bt_host);
    require_once DRUPAL_ROOT . '/includes/install.core.inc';
    try {
      install_drupal($settings);
    }
    catch (Exception $e) {
      bt_fail('the installer failed: ' . $e->getMessage());
    }
    unset($settings);
    bt_result(array(
      'ok' => TRUE,
      'profile' => $profile,
      'version' => VERSION,
      'schema' => (int) drupal_get_installed_schema_version('system'),
    ));
    break;

  case 'status':
    bt_configure($bt_host);
    list($db, $installed, $error) = bt_database();
    $result = array(
      'ok' => FALSE,
      'version' => VERSION,
      'site' => conf_path(),
      'db' => $db,
      'installed' => $installed,
      'bootstrap' => FALSE,
    );
    if (!$db) {
      $result['error'] = 'database: ' . $error;
      bt_result($result, 1);
    }
    if (!$installed) {
      $result['error'] = 'Drupal is not installed in the database of ' . $bt_host;
      bt_result($result, 1);
    }
    drupal_bootstrap(DRUPAL_BOOTSTRAP_FULL);
    $warnings = array();
    $pending = bt_pending($warnings);
    $count = 0;
    foreach ($pending as $info) {
      $count += count($info['pending']);
    }
    $schema = array();
    foreach (drupal_get_installed_schema_version(NULL, FALSE, TRUE) as $module => $version) {
      if ($version != SCHEMA_UNINSTALLED) {
        $schema[$module] = (int) $version;
      }
    }
    $public = variable_get('file_public_path', conf_path() . '/files');
    bt_result(array_merge($result, array(
      'ok' => TRUE,
      'bootstrap' => TRUE,
      'profile' => drupal_get_profile(),
      'site_name' => variable_get('site_name', ''),
      'schema' => $schema,
      'pending_updates' => $count,
      'update_warnings' => $warnings,
      'cron_last' => (int) variable_get('cron_last', 0),
      'files_public' => $public,
      'files_public_writable' => is_dir($public) && is_writable($public),
      'files_private' => variable_get('file_private_path', ''),
      'files_temp' => variable_get('file_temporary_path', ''),
      'maintenance_mode' => (bool) variable_get('maintenance_mode', FALSE),
    )), 0);
    break;

  case 'cron':
    bt_full($bt_host);
    if (!drupal_cron_run()) {
      bt_fail('cron did not run: it is already running, or a module failed (see the site log)');
    }
    bt_result(array('ok' => TRUE, 'cron_last' => (int) variable_get('cron_last', 0)));
    break;

  case 'cache-clear':
    bt_full($bt_host);
    drupal_flush_all_caches();
    bt_result(array('ok' => TRUE));
    break;

  case 'updatedb':
    define('MAINTENANCE_MODE', 'update');
    bt_full($bt_host);
    $warnings = array();
    $pending = bt_pending($warnings);
    update_fix_compatibility();
    $start = array();
    foreach ($pending as $module => $info) {
      $start[$module] = $info['start'];
    }
    $ran = array();
    if ($start) {
      $updates = update_resolve_dependencies($start);
      $map = array();
      foreach ($updates as $function => $update) {
        $map[$function] = !empty($update['reverse_paths']) ? array_keys($update['reverse_paths']) : array();
      }
      $context = array('sandbox' => array(), 'results' => array(), 'finished' => 1, 'message' => '');
      foreach ($updates as $function => $update) {
        if (!$update['allowed']) {
          $missing = isset($update['missing_dependencies']) ? implode(', ', $update['missing_dependencies']) : 'its dependencies';
          bt_fail("$function cannot run: it needs $missing", 1);
        }
        $module = $update['module'];
        $number = $update['number'];
        if (isset($start[$module])) {
          drupal_set_installed_schema_version($module, $number - 1);
          unset($start[$module]);
        }
        $context['sandbox'] = array();
        $rounds = 0;
        do {
          $context['finished'] = 1;
          update_do_one($module, $number, $map[$function], $context);
          $rounds++;
        } while ($context['finished'] < 1 && empty($context['results'][$module][$number]['#abort']) && $rounds < 100000);
        if (!empty($context['results'][$module][$number]['#abort'])) {
          $abort = $context['results'][$module][$number]['#abort'];
          $result = array(
            'ok' => FALSE,
            'error' => "$function failed: " . bt_oneline(isset($abort['query']) ? $abort['query'] : 'no message'),
            'ran' => $ran,
          );
          bt_result($result, 1);
        }
        $ran[] = $function;
      }
      drupal_flush_all_caches();
    }
    bt_result(array('ok' => TRUE, 'ran' => $ran, 'warnings' => $warnings));
    break;

  case 'maintenance':
    $value = isset($bt_options['value']) ? $bt_options['value'] : '';
    if ($value !== '0' && $value !== '1') {
      bt_fail('maintenance needs --value=1 (on) or --value=0 (off)', 2);
    }
    bt_full($bt_host);
    variable_set('maintenance_mode', (int) $value);
    bt_result(array('ok' => TRUE, 'maintenance_mode' => $value === '1'));
    break;

  case 'user-login':
    bt_full($bt_host);
    $account = user_load(1);
    if (!$account || empty($account->uid)) {
      bt_fail('the site has no user 1');
    }
    if (empty($account->status)) {
      bt_fail('user 1 (' . $account->name . ') is blocked');
    }
    bt_result(array(
      'ok' => TRUE,
      'uid' => 1,
      'name' => $account->name,
      'url' => user_pass_reset_url($account) . '/login',
    ));
    break;
}
