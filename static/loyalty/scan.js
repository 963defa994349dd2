// Camera scanning on the staff redemption page, with the browser's own BarcodeDetector (no library).
// Where the API is missing (or no camera), staff type the code or use a USB scanner that types it.
(function () {
  "use strict";
  const form = document.getElementById("lookup");
  const input = form && form.querySelector("input[name=code]");
  if (!input || !("BarcodeDetector" in window) || !navigator.mediaDevices) {
    return;
  }
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = "Scan with camera";
  button.className = "button";
  const video = document.createElement("video");
  video.setAttribute("playsinline", "");
  video.style.cssText = "display:none;max-width:360px;margin-top:8px;border-radius:6px";
  form.append(" ", button, video);

  button.addEventListener("click", async function () {
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
    } catch (error) {
      button.textContent = "Camera unavailable";
      button.disabled = true;
      return;
    }
    const detector = new window.BarcodeDetector({ formats: ["qr_code"] });
    video.srcObject = stream;
    video.style.display = "block";
    await video.play();
    const stop = function () {
      stream.getTracks().forEach(function (track) { track.stop(); });
      video.style.display = "none";
    };
    const tick = async function () {
      try {
        const codes = await detector.detect(video);
        if (codes.length) {
          stop();
          input.value = codes[0].rawValue;
          form.submit();
          return;
        }
      } catch (error) {
        stop();
        return;
      }
      window.requestAnimationFrame(tick);
    };
    window.requestAnimationFrame(tick);
  });
})();
