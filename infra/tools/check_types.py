"""Check each resource type and API version used in Bicep files, and every property name written in their bodies,
against Microsoft's generated Bicep types (github.com/Azure/bicep-types-az, generated/<provider>/<ns>/<version>/
types.json): the data the Bicep compiler itself type-checks with. No Bicep compiler is installable here
(infra/README.md, "Checks"), so this stands in for its type check of property names.

usage: python3 infra/tools/check_types.py <bicep-types-az git dir> infra/main.bicep infra/modules/*.bicep

Reads the types from the clone's HEAD with `git show`, parses the Bicep with tree-sitter-bicep (.ci/requirements.txt).
Checks object keys (following variables, both branches of `a ? b : c` and each argument of `union()`), string literals against literal types,
and flags read-only properties; expressions (function calls, references) are not evaluated. Exits 1 on a problem.
"""
import json, subprocess, sys
import tree_sitter_bicep
from tree_sitter import Language, Parser
repo = sys.argv[1]
parser = Parser(Language(tree_sitter_bicep.language()))
files = [f for f in subprocess.run(['git','-C',repo,'ls-tree','-r','--name-only','HEAD','generated'],capture_output=True,text=True).stdout.split() if f.endswith('/types.json')]
cache = {}
def load(path):
    if path not in cache:
        cache[path] = json.loads(subprocess.run(['git','-C',repo,'show','HEAD:'+path],capture_output=True,text=True).stdout)
    return cache[path]
def find(rt):
    typ, ver = rt.split('@'); ns = typ.split('/')[0].lower()
    for c in files:
        if f'/{ns}/{ver}/' in c.lower():
            types = load(c)
            for t in types:
                if t.get('$type') == 'ResourceType' and t['name'].lower() == rt.lower():
                    return types, t
    return None, None
def deref(types, ref):
    return types[int(ref['$ref'].split('/')[-1])]
problems = []; checked = 0
def keyname(prop):
    k = prop.named_children[0]
    return k.text.decode().strip("'") if k.type == 'identifier' else k.text.decode().strip("'")
def check(types, tnode, value, path, variables):
    global checked
    t = deref(types, tnode) if '$ref' in tnode else tnode
    kind = t.get('$type')
    if value.type == 'ternary_expression':
        for branch in value.named_children[1:]:
            check(types, tnode, branch, path, variables)
        return
    if value.type == 'parenthesized_expression':
        return check(types, tnode, value.named_children[0], path, variables)
    if value.type == 'identifier' and value.text.decode() in variables:
        return check(types, tnode, variables[value.text.decode()], path, variables)
    if value.type == 'null':
        return
    if value.type == 'call_expression' and value.named_children[0].text == b'union':
        # union(a, b, ...) of objects: every argument must fit the same type.
        for argument in value.named_children[1].named_children:
            check(types, tnode, argument, path, variables)
        return
    if kind == 'UnionType':
        # Try each element; report only if no element accepts the object.
        for el in t['elements']:
            before = len(problems)
            check(types, el, value, path, variables)
            if len(problems) == before:
                return
            del problems[before:]
        problems.append(f'{path}: no union member fits'); return
    if value.type == 'object':
        if kind == 'DiscriminatedObjectType':
            props = dict(t.get('baseProperties', {}))
            disc = None
            for p in value.named_children:
                if p.type == 'object_property' and keyname(p) == t['discriminator']:
                    disc = p.named_children[1].text.decode().strip("'")
            if disc and disc in t['elements']:
                props.update(deref(types, t['elements'][disc]).get('properties', {}))
            else:
                for e in t['elements'].values(): props.update(deref(types, e).get('properties', {}))
            addl = None
        elif kind == 'ObjectType':
            props = t.get('properties', {}); addl = t.get('additionalProperties')
        elif kind == 'AnyType':
            return
        else:
            problems.append(f'{path}: object given, schema says {kind}'); return
        for p in value.named_children:
            if p.type != 'object_property': continue
            k = keyname(p); v = p.named_children[1]
            checked += 1
            if k in props:
                pt = props[k]
                # Flags: 1 Required, 2 ReadOnly, 4 WriteOnly, 8 DeployTimeConstant.
                if pt.get('flags', 0) & 2 and not pt.get('flags', 0) & 1:
                    problems.append(f'{path}.{k}: read-only in the schema')
                check(types, pt['type'], v, f'{path}.{k}', variables)
            elif addl is not None:
                check(types, addl, v, f'{path}.{k}', variables)
            else:
                problems.append(f'{path}.{k}: not in the schema ({sorted(props)[:60]})')
    elif value.type == 'array':
        if kind != 'ArrayType':
            if kind != 'AnyType': problems.append(f'{path}: array given, schema says {kind}')
            return
        for item in value.named_children:
            check(types, t['itemType'], item, path + '[]', variables)
    elif value.type == 'string' and kind == 'StringLiteralType':
        if value.text.decode().strip("'") != t['value'] and '${' not in value.text.decode():
            problems.append(f'{path}: {value.text.decode()} is not {t["value"]!r}')
    # other expressions (function calls, references) are not checked
resources = set()
for f in sys.argv[2:]:
    tree = parser.parse(open(f, 'rb').read())
    variables = {}
    for n in tree.root_node.named_children:
        if n.type == 'variable_declaration':
            variables[n.named_children[0].text.decode()] = n.named_children[-1]
    for n in tree.root_node.named_children:
        if n.type != 'resource_declaration': continue
        rt = n.named_children[1].text.decode().strip("'")
        resources.add(rt)
        body = n.named_children[-1]
        existing = any(c.type == 'existing' or c.text == b'existing' for c in n.children)
        if body.type in ('if_statement',): body = body.named_children[-1]
        if body.type == 'for_statement': body = [c for c in body.named_children if c.type in ('object','if_statement')][-1]
        if body.type == 'if_statement': body = body.named_children[-1]
        types, res = find(rt)
        if not res:
            problems.append(f'{f}: {rt} not found in bicep-types-az'); continue
        if existing: continue
        # Bicep resource bodies: name, location, tags, properties..., plus Bicep's own keywords.
        bodytype = deref(types, res['body'])
        extra = {k: {'type': {'$type': 'AnyType'}} for k in ('scope', 'parent', 'dependsOn')}
        if bodytype.get('$type') == 'DiscriminatedObjectType':
            pseudo = dict(bodytype); pseudo['baseProperties'] = {**bodytype.get('baseProperties', {}), **extra}
        else:
            pseudo = {'$type': 'ObjectType', 'properties': {**bodytype.get('properties', {}), **extra}}
        check(types, pseudo, body, f'{f.split("infra/")[-1]}:{rt}', variables)
print(f'{len(resources)} resource types, {checked} property paths checked')
for p in problems: print('PROBLEM', p)
sys.exit(1 if problems else 0)
