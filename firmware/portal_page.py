# ruff: noqa: E501 - the page is HTML/CSS/JS text; its lines are not Python
# The provisioning page: plain HTML, CSS and JS in one bytes constant (kept
# in flash by mpy-cross, no filesystem file to lose). It talks to the JSON API
# in portal.py and never receives the saved password or token back.
PAGE = b"""<!DOCTYPE html>
<html><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>Xiaozhi setup</title>
<style>
body{font:16px system-ui,sans-serif;margin:0;background:#f3f4f6;color:#111}
main{max-width:420px;margin:auto;padding:12px}
h1{font-size:20px}h2{font-size:16px;margin:0 0 8px}
section{background:#fff;border-radius:10px;padding:12px;margin:0 0 12px;box-shadow:0 1px 3px #0002}
label{display:block;font-size:13px;color:#555;margin-top:8px}
input,select,button{width:100%;box-sizing:border-box;font:inherit;padding:10px;margin-top:4px;border:1px solid #ccc;border-radius:8px}
button{background:#2563eb;color:#fff;border:0;margin-top:10px}
button.alt{background:#6b7280}
ul{list-style:none;padding:0;margin:0}
li{display:flex;justify-content:space-between;align-items:center;padding:8px 4px;border-bottom:1px solid #eee}
li button{width:auto;margin:0;padding:6px 10px}
#aps li{cursor:pointer}
.msg{min-height:1.2em;font-size:14px;margin-top:8px}
.ok{color:#15803d}.err{color:#b91c1c}
</style></head><body><main>
<h1>Xiaozhi setup</h1>
<section><h2>Wi-Fi</h2>
<ul id="aps"></ul><button class="alt" id="rescan" type="button">Scan again</button>
<form id="wf"><label for="ssid">Network name</label><input id="ssid" maxlength="32" required autocomplete="off">
<label for="password">Password</label><input id="password" type="password" maxlength="64" autocomplete="off">
<button id="submit" type="submit">Connect</button></form>
<div id="wmsg" class="msg"></div></section>
<section><h2>Saved networks</h2><ul id="saved"></ul></section>
<section><h2>Server</h2><form id="af">
<label for="ota_url">OTA URL</label><input id="ota_url" placeholder="http://192.168.1.10:8003/xiaozhi/ota/">
<label for="ws_url">WebSocket URL (optional, wins over the OTA reply)</label><input id="ws_url" placeholder="ws://192.168.1.10:8000/xiaozhi/v1/">
<label for="ws_token">Token</label><input id="ws_token" type="password" autocomplete="off">
<label for="protocol_version">Protocol version</label><select id="protocol_version"><option>1</option><option>2</option><option>3</option></select>
<label for="audio_format">Audio format</label><select id="audio_format"><option>pcm</option><option>adpcm</option></select>
<label><input id="server_managed_urls" type="checkbox" style="width:auto"> Let the OTA server choose the URL</label>
<button id="adv_save" type="submit">Save server settings</button></form>
<div id="amsg" class="msg"></div></section>
<button id="exit" type="button">Done - restart and connect</button>
<div id="xmsg" class="msg"></div>
</main><script>
function $(i){return document.getElementById(i)}
function say(id,t,ok){var m=$(id);m.textContent=t;m.className='msg '+(ok?'ok':'err')}
function api(p,b){var o=b?{method:'POST',headers:{'Content-Type':'application/json'},body:JSON.stringify(b)}:{};
return fetch(p,o).then(function(r){return r.json()})}
function li(t,btn,fn){var e=document.createElement('li'),s=document.createElement('span');s.textContent=t;e.appendChild(s);
if(btn){var b=document.createElement('button');b.type='button';b.textContent=btn;b.onclick=fn;e.appendChild(b)}return e}
function scan(){api('/scan').then(function(d){var u=$('aps');u.innerHTML='';d.aps.forEach(function(a){
var e=li(a.ssid+'  '+a.rssi+' dBm'+(a.authmode?' \\u{1F512}':''));e.onclick=function(){$('ssid').value=a.ssid;$('password').focus()};u.appendChild(e)})})}
function saved(){api('/saved/list').then(function(d){var u=$('saved');u.innerHTML='';d.forEach(function(s,i){
u.appendChild(li(s,'Delete',function(){api('/saved/delete?index='+i).then(saved)}))})})}
function adv(){api('/advanced/config').then(function(d){['ota_url','ws_url','protocol_version','audio_format'].forEach(function(k){$(k).value=d[k]});
$('server_managed_urls').checked=d.server_managed_urls;$('ws_token').placeholder=d.ws_token_set?'(saved - leave empty to keep)':''})}
$('rescan').onclick=scan;
$('wf').onsubmit=function(e){e.preventDefault();say('wmsg','Connecting...',true);$('submit').disabled=true;
api('/submit',{ssid:$('ssid').value,password:$('password').value}).then(function(d){$('submit').disabled=false;
if(d.success){say('wmsg','Saved '+$('ssid').value,true);$('password').value='';saved()}else say('wmsg',d.error,false)})};
$('af').onsubmit=function(e){e.preventDefault();var b={ota_url:$('ota_url').value,ws_url:$('ws_url').value,
protocol_version:+$('protocol_version').value,audio_format:$('audio_format').value,server_managed_urls:$('server_managed_urls').checked};
if($('ws_token').value)b.ws_token=$('ws_token').value;
api('/advanced/config',b).then(function(d){if(d.success){say('amsg','Saved',true);$('ws_token').value='';adv()}else say('amsg',d.error,false)})};
$('exit').onclick=function(){api('/exit',{}).then(function(){say('xmsg','Leaving setup; the device connects now.',true)})};
scan();saved();adv();
</script></body></html>
"""
