# ruff: noqa: E501 - the page is HTML/CSS/JS text; its lines are not Python
# The provisioning page: plain HTML, CSS and JS in one bytes constant (kept
# in flash by mpy-cross, no filesystem file to lose). It talks to the JSON API
# in portal.py and never receives the saved password or token back.
# Chinese (zh-CN) by default; English when the device's `language` config key
# starts with "en", or when the person taps the switch (remembered by the
# browser, where it can). Texts live in the T table; elements name theirs in data-t
# (text) or data-p (placeholder). Example URLs point at the edge gateway
# (tools/gateway, port 8765), which transcodes for the stock server.
PAGE = b"""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>Xiaozhi</title>
<style>
body{font:16px system-ui,sans-serif;margin:0;background:#f3f4f6;color:#111}
main{max-width:420px;margin:auto;padding:12px}
header{display:flex;justify-content:space-between;align-items:center}
h1{font-size:20px}h2{font-size:16px;margin:0 0 8px}
section{background:#fff;border-radius:10px;padding:12px;margin:0 0 12px;box-shadow:0 1px 3px #0002}
label{display:block;font-size:13px;color:#555;margin-top:8px}
input,select,button{width:100%;box-sizing:border-box;font:inherit;padding:10px;margin-top:4px;border:1px solid #ccc;border-radius:8px}
input::placeholder{font-size:13px}
input[type=checkbox]{width:auto;margin:0 6px 0 0;vertical-align:middle}
button{background:#2563eb;color:#fff;border:0;margin-top:10px}
button.alt{background:#6b7280}button.warn{background:#b91c1c}
header button{width:auto;margin:0;padding:6px 12px;background:#fff;color:#2563eb;border:1px solid #2563eb}
ul{list-style:none;padding:0;margin:0}
li{display:flex;justify-content:space-between;align-items:center;gap:6px;padding:8px 4px;border-bottom:1px solid #eee}
li>span:first-child{flex:1;overflow:hidden;text-overflow:ellipsis}
.lock{width:11px;height:13px;margin-left:6px;vertical-align:-1px;fill:#6b7280}
li button{width:auto;margin:0;padding:6px 10px}
#aps li{cursor:pointer}
.bars{display:inline-flex;align-items:flex-end;gap:2px;height:16px}
.bars i{display:block;width:4px;background:#d1d5db;border-radius:1px}
.bars i.on{background:#15803d}
.msg{min-height:1.2em;font-size:14px;margin-top:8px}
.ok{color:#15803d}.err{color:#b91c1c}
.hint{font-size:12px;color:#6b7280;margin:6px 0 0}
details{margin-top:10px}summary{cursor:pointer;color:#2563eb;font-size:14px}
</style></head><body><main>
<header><h1 data-t="title"></h1><button id="lang" type="button"></button></header>
<section><h2>Wi-Fi</h2>
<ul id="aps"></ul><button class="alt" id="rescan" type="button" data-t="rescan"></button>
<form id="wf"><label for="ssid" data-t="ssid"></label><input id="ssid" maxlength="32" required autocomplete="off">
<label for="password" data-t="pw"></label><input id="password" type="password" maxlength="64" autocomplete="off">
<label><input id="showpw" type="checkbox"><span data-t="showpw"></span></label>
<button id="submit" type="submit" data-t="connect"></button></form>
<div id="wmsg" class="msg"></div></section>
<section><h2 data-t="savedh"></h2><ul id="saved"></ul></section>
<section><h2 data-t="server"></h2><form id="af">
<label for="ota_url" data-t="ota"></label><input id="ota_url" placeholder="http://<gateway-host>:8765/xiaozhi/ota/">
<label for="ws_url" data-t="ws"></label><input id="ws_url" placeholder="ws://<gateway-host>:8765/xiaozhi/v1/">
<p class="hint" data-t="gw"></p>
<label for="ws_token" data-t="token"></label><input id="ws_token" type="password" autocomplete="off">
<details id="advanced"><summary data-t="adv"></summary>
<label for="protocol_version" data-t="pv"></label><select id="protocol_version"><option>1</option><option>2</option><option>3</option></select>
<label for="audio_format" data-t="af"></label><select id="audio_format"><option>pcm</option><option>adpcm</option></select>
<label><input id="server_managed_urls" type="checkbox"><span data-t="smu"></span></label>
</details>
<button id="adv_save" type="submit" data-t="save"></button></form>
<div id="amsg" class="msg"></div></section>
<button id="exit" type="button" data-t="exit"></button>
<div id="xmsg" class="msg"></div>
</main><script>
var T={zh:{title:'\\u5c0f\\u667a\\u8bbe\\u7f6e',rescan:'\\u91cd\\u65b0\\u626b\\u63cf',ssid:'\\u7f51\\u7edc\\u540d\\u79f0',pw:'\\u5bc6\\u7801',showpw:'\\u663e\\u793a\\u5bc6\\u7801',
connect:'\\u8fde\\u63a5',connecting:'\\u6b63\\u5728\\u8fde\\u63a5\\u2026',savedas:'\\u5df2\\u4fdd\\u5b58 ',savedh:'\\u5df2\\u4fdd\\u5b58\\u7684\\u7f51\\u7edc',del:'\\u5220\\u9664',
delq:'\\u5220\\u9664\\u201c%s\\u201d\\uff1f',cancel:'\\u53d6\\u6d88',none:'\\u6ca1\\u6709\\u4fdd\\u5b58\\u7684\\u7f51\\u7edc',noaps:'\\u672a\\u627e\\u5230\\u7f51\\u7edc',
sig:'\\u4fe1\\u53f7 %s/4',lock:'\\u9700\\u8981\\u5bc6\\u7801',server:'\\u670d\\u52a1\\u5668',ota:'OTA \\u5730\\u5740',
ws:'WebSocket \\u5730\\u5740\\uff08\\u53ef\\u9009\\uff0c\\u4f18\\u5148\\u4e8e OTA \\u4e0b\\u53d1\\u7684\\u5730\\u5740\\uff09',
gw:'\\u586b\\u7f51\\u5173\\uff08python -m tools.gateway\\uff09\\u7684\\u5730\\u5740\\uff0c\\u4e0d\\u8981\\u76f4\\u63a5\\u586b\\u670d\\u52a1\\u5668\\u7684\\u7aef\\u53e3\\uff1a\\u8bbe\\u5907\\u53d1\\u9001 PCM/ADPCM\\uff0c\\u7f51\\u5173\\u8f6c\\u6210 Opus\\u3002',
token:'\\u4ee4\\u724c\\uff08Token\\uff09',keep:'\\uff08\\u5df2\\u4fdd\\u5b58\\uff0c\\u7559\\u7a7a\\u5219\\u4fdd\\u7559\\uff09',adv:'\\u9ad8\\u7ea7\\u8bbe\\u7f6e',
pv:'\\u534f\\u8bae\\u7248\\u672c',af:'\\u97f3\\u9891\\u683c\\u5f0f',smu:'\\u7531 OTA \\u670d\\u52a1\\u5668\\u6307\\u5b9a\\u5730\\u5740',save:'\\u4fdd\\u5b58\\u670d\\u52a1\\u5668\\u8bbe\\u7f6e',
saved:'\\u5df2\\u4fdd\\u5b58',exit:'\\u5b8c\\u6210\\uff0c\\u91cd\\u542f\\u5e76\\u8fde\\u63a5',leaving:'\\u6b63\\u5728\\u9000\\u51fa\\u8bbe\\u7f6e\\uff0c\\u8bbe\\u5907\\u9a6c\\u4e0a\\u8054\\u7f51\\u3002',
failed:'\\u5931\\u8d25\\uff1a',other:'English'},
en:{title:'Xiaozhi setup',rescan:'Scan again',ssid:'Network name',pw:'Password',showpw:'Show password',
connect:'Connect',connecting:'Connecting...',savedas:'Saved ',savedh:'Saved networks',del:'Delete',
delq:'Delete "%s"?',cancel:'Cancel',none:'No saved networks',noaps:'No networks found',
sig:'signal %s of 4',lock:'needs a password',server:'Server',ota:'OTA URL',
ws:'WebSocket URL (optional, wins over the OTA reply)',
gw:'Use the gateway\\'s address (python -m tools.gateway), not the server\\'s own ports: the device sends PCM/ADPCM and the gateway turns it into Opus.',
token:'Token',keep:'(saved - leave empty to keep)',adv:'Advanced',
pv:'Protocol version',af:'Audio format',smu:'Let the OTA server choose the URL',save:'Save server settings',
saved:'Saved',exit:'Done - restart and connect',leaving:'Leaving setup; the device connects now.',
failed:'Failed: ',other:'\\u4e2d\\u6587'}};
var L='zh',tokenSet=false,asked=null;
function pick(l){try{if(l)localStorage.setItem('xz-lang',l);return localStorage.getItem('xz-lang')}catch(e){return l||null}}
function $(i){return document.getElementById(i)}
function t(k,a){var s=T[L][k];return a===undefined?s:s.replace('%s',a)}
function say(id,s,ok){var m=$(id);m.textContent=s;m.className='msg '+(ok?'ok':'err')}
function api(p,b){var o=b?{method:'POST',headers:{'Content-Type':'application/json'},body:JSON.stringify(b)}:{};
return fetch(p,o).then(function(r){return r.json()})}
function lang(l){L=l;document.documentElement.lang=l=='en'?'en':'zh-CN';document.title=t('title');
document.querySelectorAll('[data-t]').forEach(function(e){e.textContent=t(e.getAttribute('data-t'))});
$('lang').textContent=t('other');$('ws_token').placeholder=tokenSet?t('keep'):'';draw();list()}
function btn(txt,cls,fn){var b=document.createElement('button');b.type='button';b.textContent=txt;if(cls)b.className=cls;b.onclick=fn;return b}
function row(txt){var e=document.createElement('li'),s=document.createElement('span');s.textContent=txt;e.appendChild(s);return e}
function level(r){return r>=-55?4:r>=-67?3:r>=-75?2:r>=-85?1:0}
function bars(n){var b=document.createElement('span'),s=t('sig',n);b.className='bars';b.setAttribute('data-level',n);b.title=s;b.setAttribute('aria-label',s);
for(var i=1;i<=4;i++){var x=document.createElement('i');x.style.height=(4*i)+'px';if(i<=n)x.className='on';b.appendChild(x)}return b}
var aps=[],nets=[],LOCK='<svg class="lock" viewBox="0 0 12 14"><rect x="1" y="6" width="10" height="8" rx="1.5"/><path d="M3.2 6V4.2a2.8 2.8 0 0 1 5.6 0V6" fill="none" stroke="#6b7280" stroke-width="1.6"/></svg>';
function draw(){var u=$('aps');u.innerHTML='';if(!aps.length)u.appendChild(row(t('noaps')));aps.forEach(function(a){
var e=row(a.ssid);if(a.authmode){e.firstChild.insertAdjacentHTML('beforeend',LOCK);e.firstChild.title=t('lock')}e.appendChild(bars(level(a.rssi)));
e.onclick=function(){$('ssid').value=a.ssid;$('password').focus()};u.appendChild(e)})}
function list(){var u=$('saved');u.innerHTML='';if(!nets.length)u.appendChild(row(t('none')));nets.forEach(function(s,i){
if(asked===i){var e=row(t('delq',s));e.className='ask';
e.appendChild(btn(t('del'),'warn',function(){asked=null;api('/saved/delete?index='+i).then(saved)}));
e.appendChild(btn(t('cancel'),'alt',function(){asked=null;list()}));u.appendChild(e);return}
u.appendChild(row(s)).appendChild(btn(t('del'),'alt',function(){asked=i;list()}))})}
function scan(){api('/scan').then(function(d){aps=d.aps;draw()})}
function saved(){api('/saved/list').then(function(d){nets=d;list()})}
function adv(first){api('/advanced/config').then(function(d){['ota_url','ws_url','protocol_version','audio_format'].forEach(function(k){$(k).value=d[k]});
$('server_managed_urls').checked=d.server_managed_urls;tokenSet=d.ws_token_set;
if(first&&!pick())lang(/^en/i.test(d.language||'')?'en':'zh');else $('ws_token').placeholder=tokenSet?t('keep'):''})}
$('lang').onclick=function(){lang(pick(L=='en'?'zh':'en')||'zh')};
$('showpw').onchange=function(){$('password').type=this.checked?'text':'password'};
$('rescan').onclick=scan;
$('wf').onsubmit=function(e){e.preventDefault();say('wmsg',t('connecting'),true);$('submit').disabled=true;
api('/submit',{ssid:$('ssid').value,password:$('password').value}).then(function(d){$('submit').disabled=false;
if(d.success){say('wmsg',t('savedas')+$('ssid').value,true);$('password').value='';saved()}else say('wmsg',t('failed')+d.error,false)})};
$('af').onsubmit=function(e){e.preventDefault();var b={ota_url:$('ota_url').value,ws_url:$('ws_url').value,
protocol_version:+$('protocol_version').value,audio_format:$('audio_format').value,server_managed_urls:$('server_managed_urls').checked};
if($('ws_token').value)b.ws_token=$('ws_token').value;
api('/advanced/config',b).then(function(d){if(d.success){say('amsg',t('saved'),true);$('ws_token').value='';adv()}else say('amsg',t('failed')+d.error,false)})};
$('exit').onclick=function(){api('/exit',{}).then(function(){say('xmsg',t('leaving'),true)})};
lang(pick()||'zh');scan();saved();adv(true);
</script></body></html>
"""
