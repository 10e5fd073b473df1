# Renders `virtualisation.desktopVMs` settings to the JSON document `vmkit desktop` reads. Needs no nixpkgs.
#
#   import ./desktop-render.nix { } settings  ->  an attribute set for builtins.toJSON
#
# The settings are either the module's evaluated config or an attribute set written by hand (or read with
# builtins.fromTOML from a vmkit TOML config). Only options that vmkit's schema (desktop-options.json, printed
# by `vmkit desktop schema --json`) names are rendered; unset options (null) are left out, so vmkit applies its
# own defaults, and attribute names starting with `_` (the module system's `_module`) are skipped. Any other
# name is an error naming its option path: a setting is never dropped in silence.
{
  schema ? builtins.fromJSON (builtins.readFile ./desktop-options.json),
  prefix ? "virtualisation.desktopVMs",
}:

let
  isInternal = name: builtins.substring 0 1 name == "_";

  renderOptions =
    path: opts: value:
    let
      known = builtins.listToAttrs (
        map (o: {
          name = o.name;
          value = o;
        }) opts
      );
      unknown = builtins.filter (n: !(known ? ${n}) && !(isInternal n)) (builtins.attrNames value);
      given = builtins.filter (o: value ? ${o.name} && value.${o.name} != null) opts;
    in
    if !builtins.isAttrs value then
      throw "${path}: expected an attribute set"
    else if unknown != [ ] then
      throw "${path}.${builtins.head unknown}: vmkit has no such option (known here: ${
        builtins.concatStringsSep ", " (map (o: o.name) opts)
      })"
    else
      builtins.listToAttrs (
        map (o: {
          name = o.name;
          value = renderValue "${path}.${o.name}" o.type value.${o.name};
        }) given
      );

  renderValue =
    path: type: v:
    if type.kind == "submodule" then
      renderOptions path type.options v
    else if type.kind == "attrs" then
      builtins.mapAttrs (name: renderValue "${path}.${name}" type.of) v
    else if type.kind == "list" then
      map (renderValue "${path}[]" type.of) v
    else if type.kind == "oneOrList" then
      (if builtins.isList v then map (renderValue "${path}[]" type.of) v else renderValue path type.of v)
    else
      v;
in
settings: renderOptions prefix schema.options settings
